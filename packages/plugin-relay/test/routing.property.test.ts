/**
 * Property tests of routing (RFC 5321 §5.1, RFC 7505) against a resolver stub whose
 * answers are drawn at random: MX sets with null MX, duplicates, mixed case and trailing
 * dots; address lookups that succeed, come back empty (NODATA), fail for good (NXDOMAIN)
 * or for now (SERVFAIL, a plain Error). Whatever the DNS says, `route` resolves (never
 * rejects) to hops that follow the MX preferences and drop no address below the
 * `mxAddressLimit`, or to a failure
 * whose permanence follows the DNS errors. Also: `orderMx` and `splitHostPort`.
 */
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DnsError, type DnsResolver } from '@mailgate/core';
import { relayOptionsSchema } from '../src/index.js';
import { orderMx, route, splitHostPort, type Hop } from '../src/routing.js';

const DOMAIN = 'dest.example';

/** How a lookup fails: for good, for now, or with a bug of the resolver. */
type Failure = 'nxdomain' | 'servfail' | 'crash';
const failure = fc.constantFrom<Failure>('nxdomain', 'servfail', 'crash');
/** One address lookup's fate. */
type Lookup = string[] | Failure;
const lookup = (addresses: fc.Arbitrary<string>): fc.Arbitrary<Lookup> => fc.oneof({ weight: 4, arbitrary: fc.array(addresses, { maxLength: 3 }) }, failure);

const hostNames = ['mx1.dest.example', 'mx2.dest.example', 'mx3.other.example', DOMAIN, 'smart.example'];
const zone = fc.record({
  A: fc.dictionary(fc.constantFrom(...hostNames), lookup(fc.ipV4())),
  AAAA: fc.dictionary(fc.constantFrom(...hostNames), lookup(fc.ipV6())),
});
type Zone = { A: Record<string, Lookup>; AAAA: Record<string, Lookup> };

/** MX records naming the hosts in any spelling, with null MX ('.' or ''), unique per host. */
const mxSet = fc
  .uniqueArray(
    fc.record({
      host: fc.constantFrom(...hostNames.slice(0, 3), '.', ''),
      spelling: fc.constantFrom('', '.', 'upper', 'upper.'),
      priority: fc.constantFrom(0, 5, 10, 10, 20, 65535),
    }),
    { selector: (r) => r.host, maxLength: 4 },
  )
  .map((records) =>
    records.map(({ host, spelling, priority }) => ({
      exchange: host === '' || host === '.' ? host : `${spelling.startsWith('upper') ? host.toUpperCase() : host}${spelling.endsWith('.') ? '.' : ''}`,
      priority,
    })),
  );
type Mx = { exchange: string; priority: number };
const mxAnswer: fc.Arbitrary<Mx[] | Failure> = fc.oneof({ weight: 6, arbitrary: mxSet }, { weight: 2, arbitrary: fc.constant([]) }, failure);

function fail(what: Failure, name: string): Error {
  if (what === 'crash') return new Error(`resolver bug for ${name}`);
  return new DnsError(what === 'nxdomain' ? 'NXDOMAIN' : 'SERVFAIL', `${name}: ${what}`, { hostname: name });
}

/** A DnsResolver that answers from the drawn zone (unknown names: NODATA). */
function stub(z: Zone, mx: Mx[] | Failure): DnsResolver {
  const answer = async <T>(value: T[] | Failure | undefined, name: string): Promise<T[]> => {
    if (value === undefined) return [];
    if (typeof value === 'string') throw fail(value, name);
    return value;
  };
  return {
    resolveMx: (name: string) => answer(name === DOMAIN ? mx : [], name),
    resolve4: (name: string) => answer(z.A[name], name),
    resolve6: (name: string) => answer(z.AAAA[name], name),
  } as unknown as DnsResolver;
}

const addressesOf = (z: Zone, name: string): string[] => [z.A[name], z.AAAA[name]].flatMap((l) => (Array.isArray(l) ? l : []));
const failures = (z: Zone, name: string): Failure[] => [z.A[name], z.AAAA[name]].filter((l): l is Failure => typeof l === 'string');

const options = fc
  .record({ mxAddressLimit: fc.constantFrom(1, 2, 5, 100), port: fc.constantFrom(25, 2525), tls: fc.constantFrom('opportunistic', 'required', 'none'), mxPort: fc.dictionary(fc.constantFrom(...hostNames), fc.integer({ min: 1, max: 65535 }), { maxKeys: 2 }) })
  .map((o) => relayOptionsSchema.parse(o));

describe('route: MX delivery', () => {
  it('never rejects; hops follow the MX preferences, name only hosts of the MX set, and drop no address below mxAddressLimit', async () => {
    await fc.assert(
      fc.asyncProperty(zone, mxAnswer, options, async (z, mx, opts) => {
        const r = await route(DOMAIN, opts, stub(z, mx));
        if (typeof mx === 'string') {
          expect(r.kind).toBe(mx === 'nxdomain' ? 'permanent' : 'temporary');
          if (r.kind === 'permanent') expect(r.status).toBe('5.1.2');
          return;
        }
        const real = mx.filter((m) => m.exchange !== '.' && m.exchange !== '');
        if (mx.length === 1 && real.length === 0) {
          expect(r).toMatchObject({ kind: 'permanent', status: '5.1.10' });
          return;
        }
        const implicit = real.length === 0;
        const hosts = implicit ? [{ name: DOMAIN, priority: 0 }] : real.map((m) => ({ name: m.exchange.toLowerCase().replace(/\.$/, ''), priority: m.priority }));
        const expected = hosts.flatMap((h) => addressesOf(z, h.name).map((address) => `${h.name} ${address}`));
        if (r.kind !== 'hops') {
          expect(expected).toHaveLength(0);
          // Permanent only for a domain without MX whose own lookups failed for good (or found nothing);
          // temporary when an MX host did not resolve, or no lookup said NXDOMAIN. (One NXDOMAIN and one
          // SERVFAIL may go either way: NXDOMAIN is about the name, whatever the type.)
          const domainFailures = failures(z, DOMAIN);
          if (!implicit || !domainFailures.every((f) => f === 'nxdomain')) {
            if (!implicit || !domainFailures.includes('nxdomain')) expect(r.kind).toBe('temporary');
          } else expect(r).toMatchObject({ kind: 'permanent', status: '5.1.2' });
          if (r.kind === 'permanent') expect(r.status).toBe('5.1.2');
          return;
        }
        // At most `mxAddressLimit` of them (the zone has fewer than MAX_MX_HOSTS hosts), none dropped below it.
        const got = r.hops.map((h: Hop) => `${h.name} ${h.address}`);
        expect(got).toHaveLength(Math.min(expected.length, opts.mxAddressLimit));
        for (const hop of got) expect(expected).toContain(hop);
        const priorities = r.hops.map((h) => hosts.find((x) => x.name === h.name)!.priority);
        expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
        for (const h of r.hops) {
          expect(isIP(h.address)).not.toBe(0);
          expect(h).toMatchObject({ port: opts.mxPort[h.name] ?? opts.port, tls: opts.tls, implicitTls: false, auth: undefined, key: `${h.name}|${h.address}|${h.port}|${opts.tls}` });
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('route: configured destinations', () => {
  it('a route or smarthost gives one hop per address of its host, on its port, never an MX lookup', async () => {
    const destination = fc.record({
      host: fc.constantFrom('smart.example', 'mx1.dest.example', '192.0.2.7', '[2001:db8::7]'),
      port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      implicitTls: fc.boolean(),
      viaRoute: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(zone, destination, async (z, d) => {
        const hostPort = d.port === undefined ? d.host : `${d.host}:${d.port}`;
        const dest = { host: hostPort, implicitTls: d.implicitTls };
        const opts = relayOptionsSchema.parse(d.viaRoute ? { routes: { [DOMAIN]: dest } } : { smarthost: dest });
        const r = await route(DOMAIN, opts, stub(z, 'crash'));
        const host = d.host.replace(/^\[|\]$/g, '');
        const addresses = isIP(host) ? [host] : addressesOf(z, host);
        expect(r.kind).toBe(addresses.length === 0 ? 'temporary' : 'hops');
        if (r.kind !== 'hops') return;
        expect(r.hops.map((h) => h.address).sort()).toEqual([...addresses].sort());
        for (const h of r.hops) expect(h).toMatchObject({ name: host, port: d.port ?? (d.implicitTls ? 465 : 25), implicitTls: d.implicitTls });
      }),
      { numRuns: 500 },
    );
  });
});

describe('orderMx', () => {
  it('is a permutation of its input in non-decreasing preference', () => {
    const records = fc.array(fc.record({ exchange: fc.constantFrom('a', 'b', 'c', 'd'), priority: fc.constantFrom(0, 1, 10, 10, 20, 65535) }), { maxLength: 10 });
    fc.assert(
      fc.property(records, (mx) => {
        const ordered = orderMx(mx);
        const key = (r: { exchange: string; priority: number }) => `${r.priority} ${r.exchange}`;
        expect(ordered.map(key).sort()).toEqual(mx.map(key).sort());
        const p = ordered.map((r) => r.priority);
        expect(p).toEqual([...p].sort((a, b) => a - b));
      }),
      { numRuns: 500 },
    );
  });
});

describe('splitHostPort', () => {
  it('takes apart what "host", "host:port" and "[v6]:port" put together', () => {
    const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6().map((ip) => `[${ip}]`));
    fc.assert(
      fc.property(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.integer({ min: 1, max: 65535 }), (h, port, fallback) => {
        const text = port === undefined ? h : `${h}:${port}`;
        expect(splitHostPort(text, fallback)).toEqual({ host: h.replace(/^\[|\]$/g, ''), port: port ?? fallback });
      }),
      { numRuns: 1000 },
    );
  });
});
