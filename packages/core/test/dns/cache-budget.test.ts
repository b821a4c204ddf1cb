/**
 * The resolver's cache against zones that answer with large records (the hostile-zone
 * case: a client picks sender domains whose TXT answers are tens of KB, and every
 * distinct name used to be kept whole for its TTL, up to 10 000 of them). The byte
 * budget must hold whatever the answers, and ordinary answers must still be cached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsResolver, type DnsResolverOptions } from '../../src/dns/index.js';
import { startTestDnsServer, type TestDnsServer, type TestZone } from '../../src/testing/dns-server.js';

const NAMES = 60;
const zone: TestZone = { 'small.test': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'], A: ['192.0.2.1'] } };
for (let i = 0; i < NAMES; i++) {
  // near the largest a DNS message can carry: 60 000 octets in 236 strings
  zone[`huge${i}.test`] = { TXT: [String(i % 10).repeat(60_000)] };
  zone[`big${i}.test`] = { TXT: [String(i % 10).repeat(10_000)] };
}

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await startTestDnsServer(zone, { defaultTtl: 86_400 });
});
afterAll(() => dns.close());

function resolver(options: DnsResolverOptions = {}): DnsResolver {
  return new DnsResolver({ servers: [dns.address], timeout: 2000, retries: 1, ...options });
}

/** how many queries for `name` reached the server during `fn` */
async function asked(name: string, fn: () => Promise<unknown>): Promise<number> {
  const start = dns.queries.length;
  await fn();
  return dns.queries.slice(start).filter((q) => q.name.toLowerCase() === name).length;
}

describe('cache byte budget', () => {
  it('does not keep answers near the DNS message size, with the default limits', async () => {
    const r = resolver();
    for (let i = 0; i < NAMES; i++) {
      const txt = await r.resolveTxt(`huge${i}.test`);
      expect(txt[0]!.join('')).toHaveLength(60_000);
    }
    expect(r.cacheUsage()).toEqual({ entries: 0, bytes: 0 });
    // asked again: over the wire again (UDP, truncated, then TCP), not from memory
    expect(await asked('huge0.test', () => r.resolveTxt('huge0.test'))).toBe(2);
    // an ordinary answer is still cached
    await r.resolveTxt('small.test');
    expect(await asked('small.test', () => r.resolveTxt('small.test'))).toBe(0);
    expect(r.cacheUsage().entries).toBe(1);
    expect(r.cacheUsage().bytes).toBeLessThan(1024);
  });

  it('stays under maxBytes however many large answers come, evicting the oldest', async () => {
    const maxBytes = 256 * 1024;
    const r = resolver({ cache: { maxBytes } });
    let peak = 0;
    for (let i = 0; i < NAMES; i++) {
      await r.resolveTxt(`big${i}.test`);
      peak = Math.max(peak, r.cacheUsage().bytes);
    }
    // 60 answers of 10 000 characters (about 1.2 MB counted as the cache counts) went through
    expect(peak).toBeLessThanOrEqual(maxBytes);
    const { entries, bytes } = r.cacheUsage();
    expect(bytes).toBeGreaterThan(maxBytes / 2); // it does cache them, up to the budget
    expect(entries).toBeGreaterThan(1);
    expect(entries).toBeLessThan(NAMES);
    // the newest answer is served from memory, the oldest was evicted
    expect(await asked(`big${NAMES - 1}.test`, () => r.resolveTxt(`big${NAMES - 1}.test`))).toBe(0);
    expect(await asked('big0.test', () => r.resolveTxt('big0.test'))).toBeGreaterThan(0);
    // and a small answer after all that is cached too
    await r.resolve4('small.test');
    expect(await asked('small.test', () => r.resolve4('small.test'))).toBe(0);
    expect(r.cacheUsage().bytes).toBeLessThanOrEqual(maxBytes);
  });
});
