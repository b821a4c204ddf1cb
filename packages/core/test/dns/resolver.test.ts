import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsError, DnsResolver, type DnsResolverOptions } from '../../src/dns/index.js';
import { startTestDnsServer, type TestDnsServer, type TestZone } from '../../src/testing/dns-server.js';

const V6_PTR = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa';

const zone: TestZone = {
  'example.test': {
    A: ['192.0.2.1', '192.0.2.2'],
    AAAA: ['2001:db8::1'],
    MX: [
      { exchange: 'mx2.example.test', priority: 20 },
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx3.example.test', priority: 30 },
    ],
    TXT: ['v=spf1 ip4:192.0.2.0/24 -all', ['part one ', 'part two']],
  },
  'long.example.test': { TXT: ['x'.repeat(600)] },
  'huge.example.test': { TXT: Array.from({ length: 10 }, (_, i) => `${i}`.repeat(200)) },
  'null.test': { MX: [{ exchange: '.', priority: 0 }] },
  '1.2.0.192.in-addr.arpa': { PTR: ['host1.example.test'] },
  [V6_PTR]: { PTR: ['host6.example.test'] },
  'www.example.test': { CNAME: 'web.example.test' },
  'web.example.test': { A: ['192.0.2.80'] },
  'alias.example.test': { CNAME: 'www.example.test', cnameOnly: true },
  'loop1.test': { CNAME: 'loop2.test' },
  'loop2.test': { CNAME: 'loop1.test' },
  'xloop1.test': { CNAME: 'xloop2.test', cnameOnly: true },
  'xloop2.test': { CNAME: 'xloop1.test', cnameOnly: true },
  'dangling.test': { CNAME: 'missing.test' },
  'servfail.test': { servfail: true, A: ['192.0.2.1'] },
  'refused.test': { refused: true },
  'drop.test': { drop: true, A: ['192.0.2.1'] },
  'trunc.test': { truncate: true, A: ['192.0.2.99'] },
  'spoof.test': { spoof: true, A: ['192.0.2.53'] },
  'flaky.test': { dropFirst: 1, A: ['192.0.2.7'] },
  'slow.test': { delayMs: 100, A: ['192.0.2.8'] },
  'old.test': { noEdns: true, A: ['192.0.2.10'] },
  'garbage.test': { malformed: true, A: ['192.0.2.11'] },
  'toservfail.test': { CNAME: 'servfail.test', cnameOnly: true },
  'short.test': { A: ['192.0.2.5'], ttl: 30 },
  'shortalias.test': { CNAME: 'web.example.test', ttl: 5 },
};

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await startTestDnsServer(zone, { negativeTtl: 60, soaTtl: 120 });
});
afterAll(() => dns.close());

function resolver(options: DnsResolverOptions = {}): DnsResolver {
  return new DnsResolver({ servers: [dns.address], timeout: 200, retries: 1, ...options });
}

/** the wire queries the server saw for `name` during `fn` */
async function wire(name: string, fn: () => Promise<unknown>): Promise<{ type: string; transport: string }[]> {
  const start = dns.queries.length;
  await fn();
  return dns.queries
    .slice(start)
    .filter((q) => q.name.toLowerCase() === name)
    .map(({ type, transport }) => ({ type, transport }));
}

async function rejection(p: Promise<unknown>): Promise<DnsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DnsError);
  return err as DnsError;
}

describe('records', () => {
  it('resolves A and AAAA', async () => {
    const r = resolver();
    expect((await r.resolve4('example.test')).sort()).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(await r.resolve6('example.test')).toEqual(['2001:db8::1']);
    expect(await r.resolve('example.test', 'AAAA')).toEqual(['2001:db8::1']);
  });

  it('sorts MX by priority', async () => {
    expect(await resolver().resolveMx('example.test')).toEqual([
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
      { exchange: 'mx3.example.test', priority: 30 },
    ]);
  });

  it('returns a null MX (RFC 7505) as exchange "."', async () => {
    expect(await resolver().resolveMx('null.test')).toEqual([{ exchange: '.', priority: 0 }]);
  });

  it('returns TXT records as their chunks', async () => {
    const r = resolver();
    const txt = await r.resolveTxt('example.test');
    expect(txt).toHaveLength(2);
    expect(txt).toContainEqual(['v=spf1 ip4:192.0.2.0/24 -all']);
    expect(txt).toContainEqual(['part one ', 'part two']);
    const long = await r.resolveTxt('long.example.test');
    expect(long.map((rec) => rec.map((c) => c.length))).toEqual([[255, 255, 90]]);
    expect(long[0]!.join('')).toBe('x'.repeat(600));
  });

  it('resolves PTR and reverse() for IPv4 and IPv6', async () => {
    const r = resolver();
    expect(await r.resolvePtr('1.2.0.192.in-addr.arpa')).toEqual(['host1.example.test']);
    expect(await r.reverse('192.0.2.1')).toEqual(['host1.example.test']);
    expect(await r.reverse('2001:db8::1')).toEqual(['host6.example.test']);
    await expect(r.reverse('not-an-ip')).rejects.toThrow(TypeError);
  });

  it('ignores case and a trailing dot', async () => {
    const r = resolver();
    const start = dns.queries.length;
    expect(await r.resolve4('EXAMPLE.Test.')).toHaveLength(2);
    expect(await r.resolve4('example.test')).toHaveLength(2); // same cache entry
    expect(dns.queries.slice(start)).toEqual([{ name: 'example.test', type: 'A', transport: 'udp' }]);
  });

  it('rejects names that cannot be sent with a permanent BADNAME', async () => {
    for (const bad of ['', '.', 'a..b', `${'x'.repeat(64)}.test`, 'bücher.test']) {
      const err = await rejection(resolver().resolve4(bad));
      expect(err.code).toBe('BADNAME');
      expect(err.temporary).toBe(false);
    }
  });
});

describe('CNAME', () => {
  it('follows a chain inside the answer', async () => {
    expect(await resolver().resolve4('www.example.test')).toEqual(['192.0.2.80']);
  });

  it('asks again for the target when the answer stops at a CNAME', async () => {
    const r = resolver();
    const seen = await wire('www.example.test', async () => {
      expect(await r.resolve4('alias.example.test')).toEqual(['192.0.2.80']);
    });
    expect(seen).toEqual([{ type: 'A', transport: 'udp' }]);
  });

  it('returns the CNAME itself when asked for CNAME', async () => {
    expect(await resolver().resolveCname('www.example.test')).toEqual(['web.example.test']);
  });

  it('detects loops inside one answer and across queries', async () => {
    for (const name of ['loop1.test', 'xloop1.test']) {
      const err = await rejection(resolver().resolve4(name));
      expect(err.code).toBe('CNAMELOOP');
      expect(err.temporary).toBe(true);
    }
  });

  it('reports NXDOMAIN for a CNAME to a missing name', async () => {
    const err = await rejection(resolver().resolve4('dangling.test'));
    expect(err.code).toBe('NXDOMAIN');
    expect(err.message).toContain('missing.test');
  });
});

describe('negative answers and failures', () => {
  it('NXDOMAIN is a permanent DnsError', async () => {
    const err = await rejection(resolver().resolveMx('nope.test'));
    expect(err).toMatchObject({ code: 'NXDOMAIN', temporary: false, hostname: 'nope.test' });
  });

  it('NODATA resolves to an empty array (also for an empty non-terminal)', async () => {
    const r = resolver();
    expect(await r.resolveMx('web.example.test')).toEqual([]);
    expect(await r.resolve6('null.test')).toEqual([]);
    expect(await r.resolve4('in-addr.arpa')).toEqual([]);
  });

  it('SERVFAIL and REFUSED are temporary', async () => {
    expect(await rejection(resolver().resolve4('servfail.test'))).toMatchObject({ code: 'SERVFAIL', temporary: true });
    expect(await rejection(resolver().resolve4('refused.test'))).toMatchObject({ code: 'REFUSED', temporary: true });
  });

  it('TIMEOUT after every attempt, temporary, one query per round', async () => {
    const r = resolver({ timeout: 100, retries: 2 });
    const started = Date.now();
    const seen = await wire('drop.test', async () => {
      const err = await rejection(r.resolve4('drop.test'));
      expect(err).toMatchObject({ code: 'TIMEOUT', temporary: true });
    });
    expect(seen).toEqual([
      { type: 'A', transport: 'udp' },
      { type: 'A', transport: 'udp' },
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('retries a server that dropped the first query', async () => {
    const seen = await wire('flaky.test', async () => {
      expect(await resolver({ timeout: 100, retries: 2 }).resolve4('flaky.test')).toEqual(['192.0.2.7']);
    });
    expect(seen).toHaveLength(2);
  });
});

describe('transport', () => {
  it('falls back to TCP when the UDP answer is truncated', async () => {
    const r = resolver();
    const seen = await wire('trunc.test', async () => {
      expect(await r.resolve4('trunc.test')).toEqual(['192.0.2.99']);
    });
    expect(seen).toEqual([
      { type: 'A', transport: 'udp' },
      { type: 'A', transport: 'tcp' },
    ]);
  });

  it('uses TCP for an answer larger than the EDNS0 payload size', async () => {
    const seen = await wire('huge.example.test', async () => {
      const txt = await resolver().resolveTxt('huge.example.test');
      expect(txt).toHaveLength(10);
      expect(txt).toContainEqual(['7'.repeat(200)]);
    });
    expect(seen.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('ignores replies with a wrong id, question or source port', async () => {
    expect(await resolver({ timeout: 500 }).resolve4('spoof.test')).toEqual(['192.0.2.53']);
  });

  it('asks again without EDNS0 when a server answers FORMERR without OPT', async () => {
    const seen = await wire('old.test', async () => {
      expect(await resolver().resolve4('old.test')).toEqual(['192.0.2.10']);
    });
    expect(seen).toEqual([
      { type: 'A', transport: 'udp' },
      { type: 'A', transport: 'udp' },
    ]);
  });

  it('reports BADRESP for an undecodable response with our id', async () => {
    const err = await rejection(resolver({ timeout: 100 }).resolve4('garbage.test'));
    expect(err).toMatchObject({ code: 'BADRESP', temporary: true });
  });

  it('reports a failure behind a CNAME against the name asked for', async () => {
    const err = await rejection(resolver().resolve4('toservfail.test'));
    expect(err).toMatchObject({ code: 'SERVFAIL', hostname: 'toservfail.test' });
  });

  it('fails over to the next server when one drops queries', async () => {
    const mute = await startTestDnsServer({ 'example.test': { drop: true } });
    try {
      const r = new DnsResolver({ servers: [mute.address, dns.address], timeout: 100, retries: 1 });
      const seen = await wire('example.test', async () => {
        expect(await r.resolveMx('example.test')).toHaveLength(3);
      });
      expect(mute.queries).toEqual([{ name: 'example.test', type: 'MX', transport: 'udp' }]);
      expect(seen).toHaveLength(1);
    } finally {
      await mute.close();
    }
  });

  it('fails over on SERVFAIL and on a closed port, reporting the informative error when all fail', async () => {
    const broken = await startTestDnsServer({ 'example.test': { servfail: true } });
    const gone = await startTestDnsServer({});
    await gone.close(); // nothing listens there any more: ICMP port unreachable
    try {
      const r = new DnsResolver({ servers: [gone.address, broken.address, dns.address], timeout: 1000, retries: 1 });
      const started = Date.now();
      expect(await r.resolve4('example.test')).toHaveLength(2);
      expect(Date.now() - started).toBeLessThan(1000); // no timeout was waited for
      expect(broken.queries).toHaveLength(1);

      const err = await rejection(new DnsResolver({ servers: [broken.address, gone.address], timeout: 1000 }).resolve4('example.test'));
      expect(err.code).toBe('NETERR');
      expect(err.temporary).toBe(true);
    } finally {
      await broken.close();
    }
  });

  it('accepts "ip", "ip:port" and "[v6]:port" servers and refuses anything else', () => {
    expect(new DnsResolver({ servers: ['192.0.2.1', '127.0.0.1:5353', '[::1]:53', '2001:db8::53'] }).servers).toEqual([
      { host: '192.0.2.1', port: 53, family: 4 },
      { host: '127.0.0.1', port: 5353, family: 4 },
      { host: '::1', port: 53, family: 6 },
      { host: '2001:db8::53', port: 53, family: 6 },
    ]);
    expect(() => new DnsResolver({ servers: ['dns.example:53'] })).toThrow(TypeError);
    expect(() => new DnsResolver({ servers: ['127.0.0.1:99999'] })).toThrow(TypeError);
  });
});

describe('cache', () => {
  function clocked(options: DnsResolverOptions = {}) {
    const clock = { now: 1_700_000_000_000 };
    const r = resolver({ now: () => clock.now, ...options });
    const advance = (seconds: number): void => {
      clock.now += seconds * 1000;
    };
    return { r, advance };
  }

  it('keeps a positive answer for its TTL', async () => {
    const { r, advance } = clocked();
    const seen = await wire('short.test', async () => {
      await r.resolve4('short.test');
      advance(29);
      expect(await r.resolve4('short.test')).toEqual(['192.0.2.5']);
    });
    expect(seen).toHaveLength(1);
    advance(2);
    expect(await wire('short.test', () => r.resolve4('short.test'))).toHaveLength(1);
  });

  it('uses the smallest TTL along a CNAME chain', async () => {
    const { r, advance } = clocked();
    await r.resolve4('shortalias.test');
    advance(4);
    expect(await wire('shortalias.test', () => r.resolve4('shortalias.test'))).toHaveLength(0);
    advance(2);
    expect(await wire('shortalias.test', () => r.resolve4('shortalias.test'))).toHaveLength(1);
  });

  it('caches NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM)', async () => {
    const { r, advance } = clocked();
    const sent = (): number =>
      dns.queries.filter((q) => q.name === 'cached-nx.test' || (q.name === 'web.example.test' && q.type === 'MX')).length;
    const ask = async (): Promise<number> => {
      const before = sent();
      expect(await rejection(r.resolve4('cached-nx.test'))).toMatchObject({ code: 'NXDOMAIN' });
      expect(await r.resolveMx('web.example.test')).toEqual([]);
      return sent() - before;
    };
    expect(await ask()).toBe(2);
    advance(59); // SOA MINIMUM 60 < SOA TTL 120
    expect(await ask()).toBe(0);
    advance(2);
    expect(await ask()).toBe(2);
  });

  it('does not cache a negative answer without SOA, nor SERVFAIL', async () => {
    const bare = await startTestDnsServer({}, { soa: false });
    try {
      const r = new DnsResolver({ servers: [bare.address], timeout: 200, retries: 1 });
      await rejection(r.resolve4('nx.test'));
      await rejection(r.resolve4('nx.test'));
      expect(bare.queries).toHaveLength(2);
    } finally {
      await bare.close();
    }
    const r = resolver();
    const seen = await wire('servfail.test', async () => {
      await rejection(r.resolve4('servfail.test'));
      await rejection(r.resolve4('servfail.test'));
    });
    expect(seen).toHaveLength(2);
  });

  it('shares one query among concurrent callers, with or without cache', async () => {
    for (const cache of [true, false]) {
      const r = resolver({ cache });
      const seen = await wire('slow.test', async () => {
        const all = await Promise.all(Array.from({ length: 5 }, () => r.resolve4('Slow.Test')));
        expect(all).toEqual(Array.from({ length: 5 }, () => ['192.0.2.8']));
      });
      expect(seen).toHaveLength(1);
      // without a cache, the next (non-concurrent) call goes to the wire again
      expect(await wire('slow.test', () => r.resolve4('slow.test'))).toHaveLength(cache ? 0 : 1);
    }
  });

  it('shares failures among concurrent callers without unhandled rejections', async () => {
    const r = resolver({ timeout: 100 });
    const results = await Promise.allSettled([r.resolve4('drop.test'), r.resolve4('drop.test')]);
    expect(results.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });

  it('evicts the least recently used entry when full', async () => {
    const r = resolver({ cache: { maxEntries: 2 } });
    await r.resolve4('example.test');
    await r.resolve4('web.example.test');
    await r.resolve4('example.test'); // now most recent
    await r.resolve4('short.test'); // evicts web.example.test
    expect(await wire('example.test', () => r.resolve4('example.test'))).toHaveLength(0);
    expect(await wire('web.example.test', () => r.resolve4('web.example.test'))).toHaveLength(1);
  });

  it('hands out copies, so callers cannot change the cache', async () => {
    const r = resolver();
    const mx = await r.resolveMx('example.test');
    mx[0]!.exchange = 'evil.test';
    mx.pop();
    expect(await r.resolveMx('example.test')).toHaveLength(3);
    expect((await r.resolveMx('example.test'))[0]!.exchange).toBe('mx1.example.test');
  });
});

describe('resources', () => {
  it('leaves no socket or timer behind', async () => {
    const count = (): number =>
      process.getActiveResourcesInfo().filter((n) => /UDP|TCP|Timeout/.test(n)).length;
    const before = count();
    const r = resolver({ timeout: 100, cache: false });
    await Promise.allSettled([
      r.resolve4('example.test'),
      r.resolve4('trunc.test'),
      r.resolve4('drop.test'),
      r.resolve4('servfail.test'),
      r.resolve4('nope.test'),
      r.resolve4('spoof.test'),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let close callbacks run
    expect(count()).toBeLessThanOrEqual(before);
  });
});
