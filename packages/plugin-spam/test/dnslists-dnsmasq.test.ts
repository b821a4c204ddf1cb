/**
 * IP lists against a real DNS server: dnsmasq with the project's test zone
 * (shared/data/dns/dnsmasq-test.conf: 127.0.0.2 listed in bl.test, 127.0.0.1 not), on a
 * loopback port chosen at run time.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DNSMASQ, startDnsmasq, type TestDnsmasq } from '@mailgate/core/testing';
import { ipListSchema, listingText, queryIpLists } from '../src/dnslists.js';
import { resolverFor } from './lists-helpers.js';

const CONF = fileURLToPath(new URL('../../../../shared/data/dns/dnsmasq-test.conf', import.meta.url));

const missing = !existsSync(DNSMASQ) ? `${DNSMASQ} not installed` : !existsSync(CONF) ? `${CONF} not found` : '';
if (missing) console.warn(`skipping the dnsmasq DNS list test: ${missing}`);

describe.skipIf(missing !== '')(`IP lists on a real dnsmasq${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let dnsmasq: TestDnsmasq | undefined;
  let port = 0;

  beforeAll(async () => {
    dnsmasq = await startDnsmasq(CONF, 'mail.example.test', 'A');
    port = dnsmasq.port;
  });

  afterAll(async () => {
    await dnsmasq?.close();
  });

  it('lists 127.0.0.2 with its TXT, and not 127.0.0.1', async () => {
    const resolver = resolverFor(`127.0.0.1:${port}`, { timeout: 1_000 });
    const bl = ipListSchema.parse({ zone: 'bl.test', weight: 3 });
    const listed = await queryIpLists('127.0.0.2', [bl], resolver);
    expect(listed.problems).toEqual([]);
    expect(listed.hits).toEqual([{ list: 'bl.test', zone: 'bl.test', query: '2.0.0.127.bl.test', listed: '127.0.0.2', answers: ['127.0.0.2'], weight: 3 }]);
    expect(await listingText(listed.hits[0]!, resolver)).toBe('127.0.0.2 is listed for testing');
    expect(await queryIpLists('127.0.0.1', [bl], resolver)).toEqual({ hits: [], problems: [] });
  });
});
