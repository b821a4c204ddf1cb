/**
 * The resolver against a real DNS server: dnsmasq with the project's test zone
 * (shared/data/dns/dnsmasq-test.conf), on a loopback port chosen at run time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsError, DnsResolver } from '../../src/dns/index.js';
import { DNSMASQ, startDnsmasq, type TestDnsmasq } from '../../src/testing/dnsmasq.js';

const sharedData =
  process.env.MAILGATE_SHARED_DATA ?? path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../../shared/data');
const CONF = path.join(sharedData, 'dns', 'dnsmasq-test.conf');

const missing = !existsSync(DNSMASQ) ? `${DNSMASQ} not installed` : !existsSync(CONF) ? `${CONF} not found` : '';
if (missing) console.warn(`skipping the dnsmasq DNS test: ${missing}`);

describe.skipIf(missing !== '')(`real dnsmasq${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let dnsmasq: TestDnsmasq | undefined;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dnsmasq = await startDnsmasq(CONF);
    resolver = new DnsResolver({ servers: [dnsmasq.address], timeout: 500, retries: 1, cache: false });
  });

  afterAll(async () => {
    await dnsmasq?.close();
  });

  it('answers MX and the SPF TXT of example.test', async () => {
    expect(await resolver.resolveMx('example.test')).toEqual([{ exchange: 'mail.example.test', priority: 10 }]);
    expect(await resolver.resolveTxt('example.test')).toEqual([['v=spf1 ip4:192.0.2.0/24 mx -all']]);
    expect(await resolver.resolve4('mail.example.test')).toEqual(['192.0.2.25']);
  });

  it('answers the RFC 5782 DNSBL test entry and NXDOMAIN for an unlisted address', async () => {
    expect(await resolver.resolve4('2.0.0.127.bl.test')).toEqual(['127.0.0.2']);
    expect(await resolver.resolveTxt('2.0.0.127.bl.test')).toEqual([['127.0.0.2 is listed for testing']]);
    const err = await resolver.resolve4('1.0.0.127.bl.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect(err).toMatchObject({ code: 'NXDOMAIN', temporary: false });
  });
});
