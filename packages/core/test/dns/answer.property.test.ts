/**
 * Property tests of `interpret`, which turns one DNS response into the resolver's result.
 * Responses are built with dns-packet (names from a small pool, so CNAME chains, loops,
 * case variants and records of other types and classes are frequent), sent through
 * dns-packet's encoder and decoder as the transport does, then optionally corrupted byte
 * by byte; random datagrams too. Whatever decodes, interpret answers a consistent result
 * or throws DnsError('CNAMELOOP'), or DnsError('BADRESP') when a CNAME points to a name
 * that cannot be asked for (answer-cname-target.property.test.ts), never anything else.
 */
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { interpret, MAX_CNAME_HOPS, MAX_NEGATIVE_TTL, MAX_POSITIVE_TTL, type WireResult } from '../../src/dns/answer.js';
import { DnsError } from '../../src/dns/errors.js';
import { normalizeName, sameName } from '../../src/dns/names.js';
import type { DnsResponse, QueryType, Question } from '../../src/dns/transport.js';

const QNAME = 'q.example.test';
const names = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(QNAME, 'Q.Example.TEST', 'q.example.test.') },
  { weight: 4, arbitrary: fc.constantFrom('c1.example.test', 'C2.example.test', 'c3.example.test') },
  { weight: 1, arbitrary: fc.constantFrom('other.test', 'é.test', 'a b.test', '.') },
);
const queryType = fc.constantFrom<QueryType>('A', 'AAAA', 'MX', 'TXT', 'PTR', 'CNAME');
const ttl = fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff));

const record: fc.Arbitrary<Answer> = fc.oneof(
  fc.record({ type: fc.constant('CNAME' as const), name: names, ttl, data: names }),
  fc.record({ type: fc.constant('A' as const), name: names, ttl, class: fc.constantFrom('IN', 'IN', 'CH' as const), data: fc.ipV4() }),
  fc.record({ type: fc.constant('AAAA' as const), name: names, ttl, data: fc.ipV6().map((ip) => new URL(`http://[${ip}]/`).hostname.slice(1, -1)) }),
  fc.record({ type: fc.constant('MX' as const), name: names, ttl, data: fc.record({ preference: fc.integer({ min: 0, max: 65535 }), exchange: fc.oneof(names, fc.constant('.')) }) }),
  fc.record({ type: fc.constant('TXT' as const), name: names, ttl, data: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ type: fc.constantFrom('PTR' as const, 'CNAME' as const, 'NS' as const), name: names, ttl, class: fc.constantFrom('IN', 'IN', 'IN', 'HS' as const), data: names }),
  fc.record({ type: fc.constant('SRV' as const), name: names, ttl, data: fc.record({ priority: fc.nat(65535), weight: fc.nat(65535), port: fc.nat(65535), target: names }) }),
) as fc.Arbitrary<Answer>;

const soa: fc.Arbitrary<Answer> = fc.record({
  type: fc.constant('SOA' as const),
  name: names,
  ttl,
  data: fc.record({ mname: names, rname: names, serial: fc.nat(), refresh: fc.nat(), retry: fc.nat(), expire: fc.nat(), minimum: ttl }),
}) as fc.Arbitrary<Answer>;

/** A response as a server might send it, already through dns-packet's encoder. */
const wire = fc
  .record({
    type: queryType,
    rcode: fc.constantFrom(0, 0, 0, 3, 3, 2),
    answers: fc.array(record, { maxLength: 10 }),
    authorities: fc.array(fc.oneof(soa, record), { maxLength: 3 }),
  })
  .map(({ type, rcode, answers, authorities }) => ({
    type,
    bytes: dnsPacket.encode({ type: 'response', id: 7, flags: rcode, questions: [{ name: QNAME, type, class: 'IN' }], answers, authorities }),
  }));

/** Corruption: bytes overwritten, the message cut short, bytes inserted. */
const corrupted = fc
  .tuple(wire, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')), { minLength: 1, maxLength: 4 }))
  .map(([{ type, bytes }, edits]) => {
    let b = Buffer.from(bytes);
    for (const [at, value, how] of edits) {
      const i = 12 + (at % Math.max(1, b.length - 12)); // keep the header: the transport matched it already
      if (how === 'set') b[i] = value;
      else if (how === 'cut') b = b.subarray(0, i);
      else b = Buffer.concat([b.subarray(0, i), Buffer.from([value]), b.subarray(i)]);
    }
    return { type, bytes: b };
  });

/** What the transport hands the resolver for a datagram, or undefined where it would count the datagram as malformed. */
function response(bytes: Uint8Array): DnsResponse | undefined {
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(Buffer.from(bytes));
  } catch {
    return undefined;
  }
  return {
    rcode: (packet.flags ?? 0) & 0x0f,
    truncated: packet.flag_tc ?? false,
    answers: packet.answers ?? [],
    authorities: packet.authorities ?? [],
    edns: false,
    server: { host: '192.0.2.53', port: 53, family: 4 },
    transport: 'udp',
  };
}

const topBitZero = (a: Answer): number => ('ttl' in a && typeof a.ttl === 'number' && a.ttl <= 0x7fffffff ? a.ttl : 0);
const isIn = (a: Answer): boolean => !('class' in a) || a.class === undefined || a.class === 'IN';

/** Some CNAME of the response points to a name that cannot be asked for (the root, non-ASCII…). */
function hasInvalidTarget(res: DnsResponse): boolean {
  return res.answers.some((a) => isIn(a) && a.type === 'CNAME' && !isValidName(a.data));
}

function isValidName(name: string): boolean {
  try {
    normalizeName(name);
    return true;
  } catch {
    return false;
  }
}

/** Run interpret: its result, or its (only allowed) errors: CNAMELOOP, or BADRESP for a CNAME to an invalid name. */
function run(q: Question, res: DnsResponse): WireResult | DnsError {
  try {
    return interpret(q, res);
  } catch (error) {
    expect(error).toBeInstanceOf(DnsError);
    expect((error as DnsError).code).toEqual(hasInvalidTarget(res) ? expect.stringMatching(/^(CNAMELOOP|BADRESP)$/) : 'CNAMELOOP');
    expect((error as DnsError).temporary).toBe(true);
    return error as DnsError;
  }
}

/** Every invariant of a result against the response it came from. */
function check(q: Question, res: DnsResponse, result: WireResult): void {
  const answers = res.answers.filter(isIn);
  expect(Number.isInteger(result.ttl) && result.ttl >= 0 && result.ttl <= MAX_POSITIVE_TTL).toBe(true);
  expect(result.chain.length).toBeLessThanOrEqual(MAX_CNAME_HOPS);
  expect(new Set([q.name, ...result.chain]).size).toBe(result.chain.length + 1);
  // each link of the chain is a CNAME of the response, at the previous name
  [q.name, ...result.chain].slice(0, -1).forEach((owner, i) => {
    const link = answers.filter((a): a is Answer & { data: string } => a.type === 'CNAME' && sameName(a.name, owner));
    expect(link.map((a) => a.data.toLowerCase().replace(/\.$/, ''))).toContain(result.chain[i]);
  });
  const last = result.chain.at(-1) ?? q.name;
  const rrset = answers.filter((a) => a.type === q.type && sameName(a.name, last));
  switch (result.kind) {
    case 'data': {
      expect(result.records).toHaveLength(rrset.length);
      expect(result.ttl).toBeLessThanOrEqual(Math.min(...rrset.map(topBitZero)));
      for (const r of result.records) {
        if (q.type === 'A') expect(isIPv4(r as string)).toBe(true);
        if (q.type === 'AAAA') expect(isIPv6(r as string)).toBe(true);
        if (q.type === 'MX') expect(r).toEqual({ exchange: expect.any(String), priority: expect.any(Number) });
        if (q.type === 'TXT') for (const s of r as string[]) expect(typeof s).toBe('string');
        if (q.type === 'PTR' || q.type === 'CNAME') expect(typeof r).toBe('string');
      }
      break;
    }
    case 'nxdomain':
      expect(res.rcode).toBe(3);
      expect(rrset).toHaveLength(0);
      expect(result.ttl).toBeLessThanOrEqual(MAX_NEGATIVE_TTL);
      break;
    case 'nodata':
      expect(rrset).toHaveLength(0);
      expect(result.chain).toHaveLength(0);
      expect(result.ttl).toBeLessThanOrEqual(MAX_NEGATIVE_TTL);
      break;
    case 'cname':
      expect(rrset).toHaveLength(0);
      expect(result.chain.length).toBeGreaterThan(0);
      break;
  }
  if (result.kind !== 'data') expect(result.records).toHaveLength(0);
  // no SOA in the authority section: a negative answer is not cached (RFC 2308 §5)
  if ((result.kind === 'nodata' || result.kind === 'nxdomain') && !res.authorities.some((a) => a.type === 'SOA')) expect(result.ttl).toBe(0);
}

describe('interpret', () => {
  it('well-formed responses: a result consistent with the records, or a CNAME loop error', () => {
    fc.assert(
      fc.property(wire, ({ type, bytes }) => {
        const res = response(bytes)!;
        const q = { name: QNAME, type };
        const result = run(q, res);
        if (!(result instanceof DnsError)) check(q, res, result);
      }),
      { numRuns: 1000 },
    );
  });

  it('corrupted responses and random datagrams: whatever dns-packet decodes, the same guarantees', () => {
    const datagram = fc.tuple(queryType, fc.uint8Array({ minLength: 12, maxLength: 300 })).map(([type, bytes]) => ({ type, bytes }));
    fc.assert(
      fc.property(fc.oneof(corrupted, datagram), ({ type, bytes }) => {
        const res = response(bytes);
        if (!res) return; // the transport reports that as BADRESP
        const q = { name: QNAME, type };
        const result = run(q, res);
        if (!(result instanceof DnsError)) check(q, res, result);
      }),
      { numRuns: 1500 },
    );
  });

  it('owner names compare case-insensitively: changing their case changes nothing', () => {
    const flip = (name: string) => [...name].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join('');
    fc.assert(
      fc.property(wire, ({ type, bytes }) => {
        const res = response(bytes)!;
        const shouted = { ...res, answers: res.answers.map((a) => ({ ...a, name: flip(a.name) })) };
        const q = { name: QNAME, type };
        const a = run(q, res);
        const b = run(q, shouted);
        if (a instanceof DnsError || b instanceof DnsError) expect([a instanceof DnsError, b instanceof DnsError]).toEqual([true, true]);
        else expect(b).toEqual(a);
      }),
      { numRuns: 500 },
    );
  });

  it('a CNAME chain longer than the limit, or one that loops, is a CNAMELOOP', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.boolean(), (length, loop) => {
        const hop = (i: number) => (i === 0 ? QNAME : `h${i}.example.test`);
        const answers = Array.from({ length }, (_, i) => ({ type: 'CNAME', name: hop(i), ttl: 60, data: loop && i === length - 1 ? hop(0) : hop(i + 1) }));
        const res = response(dnsPacket.encode({ type: 'response', id: 7, questions: [{ name: QNAME, type: 'A' }], answers: answers as Answer[] }))!;
        const result = run({ name: QNAME, type: 'A' }, res);
        expect(result instanceof DnsError).toBe(loop || length > MAX_CNAME_HOPS);
        if (!(result instanceof DnsError)) expect(result).toMatchObject({ kind: 'cname', chain: answers.map((a) => a.data) });
      }),
      { numRuns: 200 },
    );
  });
});
