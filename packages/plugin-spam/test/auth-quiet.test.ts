/**
 * mailauth 4.13.3 prints "TOTAL <n> EXPECTING <l>" with console.log for a DKIM signature
 * whose l= does not match the body; the plugin drops exactly that line (a sender must not
 * be able to write into the stdout that carries the gateway's JSON log). Its own file: the
 * filter wraps whatever console.log is when the first verification runs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DnsResolver } from '@mailgate/core';
import type { TestDnsServer } from '@mailgate/core/testing';
import { mailauthResolver, verifyDkim } from '../src/auth/index.js';
import { mail, sign, startAuthDns } from './auth-helpers.js';

const printed: unknown[][] = [];
const original = console.log;
let dns: { server: TestDnsServer; resolver: DnsResolver };
beforeAll(async () => {
  console.log = (...args: unknown[]) => void printed.push(args);
  dns = await startAuthDns({});
});
afterAll(async () => {
  console.log = original;
  await dns.server.close();
});

it('an l= that does not match the body prints nothing, other console output goes through', async () => {
  const signed = await sign(mail('ann@signer.example', 'Body.\r\n'), { domain: 'signer.example', maxBodyLength: 4 });
  const raw = signed.replace(/;\s*l=4;/, '; l=4000;');
  expect(raw).toContain('l=4000;');
  const check = await verifyDkim(Buffer.from(raw), { resolver: mailauthResolver(dns.resolver) });
  expect(check.signatures[0]).toMatchObject({ result: 'fail', comment: 'body hash did not verify' });
  console.log('still printed');
  expect(printed).toEqual([['still printed']]);
});
