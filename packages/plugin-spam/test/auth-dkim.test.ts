/**
 * DKIM verification with mailauth through the real DnsResolver and a real DNS server on
 * loopback: the RFC 8463 examples (Ed25519 and RSA), tampered copies, missing and broken
 * keys, messages we sign ourselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsResolver } from '@mailgate/core';
import type { TestDnsServer } from '@mailgate/core/testing';
import { mailauthResolver, verifyDkim } from '../src/auth/index.js';
import { dkimDataMissing, mail, readDkim, sign, startAuthDns } from './auth-helpers.js';

let dns: { server: TestDnsServer; resolver: DnsResolver };
beforeAll(async () => {
  dns = await startAuthDns();
});
afterAll(async () => {
  await dns.server.close();
});

const verify = (raw: string | Buffer, maxSignatures = 5) => verifyDkim(Buffer.from(raw), { resolver: mailauthResolver(dns.resolver), maxSignatures });

describe.skipIf(dkimDataMissing !== '')(`RFC 8463 examples${dkimDataMissing ? ` (skipped: ${dkimDataMissing})` : ''}`, () => {
  it('the ed25519 and the rsa signature both pass', async () => {
    const check = await verify(readDkim('rfc8463-example.ed25519+rsa.signed.eml'));
    expect(check.signatures.map((s) => [s.result, s.algorithm, s.selector, s.domain])).toEqual([
      ['pass', 'ed25519-sha256', 'brisbane', 'football.example.com'],
      ['pass', 'rsa-sha256', 'test', 'football.example.com'],
    ]);
    expect(check.headerFrom).toEqual(['joe@football.example.com']);
    expect(check.total).toBe(2);
    expect(check.skipped).toBe(0);
  });

  it('the rsa-only example passes', async () => {
    const check = await verify(readDkim('rfc8463-example.rsa.signed.eml'));
    expect(check.signatures.map((s) => s.result)).toEqual(['pass']);
  });

  it('a modified body fails on its body hash (RFC 6376 §6.1.3)', async () => {
    const raw = readDkim('rfc8463-example.ed25519+rsa.signed.eml').toString('latin1').replace('We lost the game.', 'We won the game.');
    const check = await verify(raw);
    expect(check.signatures.map((s) => s.result)).toEqual(['fail', 'fail']);
    expect(check.signatures[0]!.comment).toMatch(/body hash/);
  });

  it('a modified signed header fails on the signature', async () => {
    const raw = readDkim('rfc8463-example.ed25519+rsa.signed.eml').toString('latin1').replace('Subject: Is dinner ready?', 'Subject: Is lunch ready?');
    const check = await verify(raw);
    expect(check.signatures.map((s) => s.result)).toEqual(['fail', 'fail']);
  });

  it('an unsigned message is none', async () => {
    const check = await verify(readDkim('rfc6376-example.unsigned.eml'));
    expect(check.signatures).toEqual([{ result: 'none', comment: 'message not signed' }]);
    expect(check.total).toBe(0);
  });
});

describe('keys', () => {
  it('no key record is a permerror ("no key for signature", RFC 6376 §6.1.2)', async () => {
    const check = await verify(await sign(mail('ann@nokey.example'), { domain: 'nokey.example' }));
    expect(check.signatures[0]).toMatchObject({ result: 'permerror', domain: 'nokey.example', comment: 'no key' });
  });

  it('a key that cannot be fetched (SERVFAIL) is a temperror', async () => {
    const check = await verify(await sign(mail('ann@signer.example'), { domain: 'signer.example', selector: 'tmp' }));
    expect(check.signatures[0]).toMatchObject({ result: 'temperror', domain: 'signer.example' });
  });

  it('a garbage key record is a permerror, without a crash', async () => {
    for (const selector of ['garbage', 'junk']) {
      const check = await verify(await sign(mail('ann@signer.example'), { domain: 'signer.example', selector }));
      expect(check.signatures[0]!.result).toBe('permerror');
    }
  });

  it('our own rsa and ed25519 signatures pass', async () => {
    const check = await verify(await sign(mail('ann@signer.example'), { domain: 'signer.example', key: 'rsa' }, { domain: 'signer.example', key: 'ed25519' }));
    expect(check.signatures.map((s) => [s.result, s.algorithm])).toEqual([
      ['pass', 'rsa-sha256'],
      ['pass', 'ed25519-sha256'],
    ]);
  });
});
