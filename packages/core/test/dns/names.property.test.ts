/**
 * Property tests of the DNS name helpers, with dns-packet (the wire codec the resolver
 * uses) and node:net as the oracles: a name normalizeName accepts is sent and read back
 * unchanged; anything else is refused with DnsError('BADNAME') and nothing else; the
 * reverse names of IPv4 and IPv6 addresses are the bytes dns-packet encodes for them.
 */
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DnsError, normalizeName, reverseLabels, reverseName } from '../../src/dns/index.js';
import { expandIPv6, sameName } from '../../src/dns/names.js';

/** Printable ASCII and the space, without the dot and the backslash: what a label may hold. */
const labelChar = fc.integer({ min: 0x20, max: 0x7e }).filter((c) => c !== 0x2e && c !== 0x5c).map((c) => String.fromCharCode(c));
const label = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/),
  fc.array(labelChar, { minLength: 1, maxLength: 63 }).map((cs) => cs.join('')),
  fc.constantFrom('_dmarc', '_domainkey', 'A'.repeat(63), 'Macro Space', '*'),
);
/** Valid names (at most 253 octets), with or without the trailing dot. */
const validName = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 8 }), fc.boolean())
  .map(([labels, dot]) => ({ name: labels.join('.'), dot }))
  .filter(({ name }) => name.length <= 253)
  .map(({ name, dot }) => (dot ? `${name}.` : name));

/** Anything at all, and near-misses of valid names. */
const anyName = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string16bits({ maxLength: 20 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.constantFrom('', '.', '..', 'a..b', '.a', 'a.b..', 'a\\.b', 'a\0b', 'a\tb', 'ex\u00e4mple.test', '\u212a.test', 'b\u0131.test', 'A'.repeat(64)),
  fc.tuple(validName, fc.constantFrom('.', '..', '\\', '\0', '\n', '\u00e9', '\u0130', 'a'.repeat(63), 'x'.repeat(254)), fc.nat()).map(([n, junk, at]) => {
    const i = at % (n.length + 1);
    return n.slice(0, i) + junk + n.slice(i);
  }),
  validName,
);

/** Encode a question for `name` the way the transport does, decode it, and give back the name read. */
function wireRoundTrip(name: string): string {
  const packet = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name, type: 'A', class: 'IN' }] });
  return dnsPacket.decode(packet).questions![0]!.name;
}

describe('normalizeName', () => {
  it('accepts every valid name: lower-cased, one trailing dot dropped, idempotent', () => {
    fc.assert(
      fc.property(validName, (name) => {
        const n = normalizeName(name);
        expect(n).toBe(name.replace(/\.$/, '').toLowerCase());
        expect(normalizeName(n)).toBe(n);
        expect(normalizeName(`${n.toUpperCase()}.`)).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  it('whatever it is given: a name that survives the wire unchanged, or DnsError BADNAME naming the input', () => {
    fc.assert(
      fc.property(anyName, (name) => {
        let n: string;
        try {
          n = normalizeName(name);
        } catch (error) {
          expect(error).toBeInstanceOf(DnsError);
          expect(error).toMatchObject({ code: 'BADNAME', temporary: false, hostname: name });
          return;
        }
        expect(n.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(n)).toBeLessThanOrEqual(253);
        expect(n).toBe(n.toLowerCase());
        for (const l of n.split('.')) expect(l.length >= 1 && l.length <= 63).toBe(true);
        expect(wireRoundTrip(n)).toBe(n);
        expect(normalizeName(n)).toBe(n);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sameName', () => {
  it('agrees with comparing normalized names, and ignores case and one trailing dot', () => {
    const variant = (name: string, upper: boolean, dot: boolean) => `${upper ? name.toUpperCase() : name.toLowerCase()}${dot ? '.' : ''}`;
    fc.assert(
      fc.property(validName, validName, fc.boolean(), fc.boolean(), (a, b, upper, dot) => {
        const bare = a.replace(/\.$/, '');
        expect(sameName(a, variant(bare, upper, dot))).toBe(true);
        expect(sameName(a, b)).toBe(normalizeName(a) === normalizeName(b));
        expect(sameName(b, a)).toBe(sameName(a, b));
      }),
      { numRuns: 500 },
    );
  });
});

describe('reverse names', () => {
  /** An IPv4 address as dns-packet writes it in an A record: the oracle for its bytes. */
  const addressBytes = (ip: string): Buffer => {
    const packet = dnsPacket.encode({ type: 'response', id: 1, answers: [{ type: 'A', name: 'x', ttl: 1, data: ip }] });
    return packet.subarray(packet.length - 4);
  };
  /**
   * IPv6 from its eight groups (the ground truth), spelled as written in the wild: leading
   * zeros or not, `::` over any run of zero groups (not only the longest), an IPv4 tail,
   * upper case, a zone id. (dns-packet's codec is no oracle here: it encodes
   * "::0:0:0:0:0:0:1" as "::".)
   */
  const ipv6 = fc
    .record({
      groups: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }),
      widths: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 8, maxLength: 8 }),
      squeeze: fc.nat(),
      v4Tail: fc.boolean(),
      upper: fc.boolean(),
      zone: fc.option(fc.constantFrom('eth0', '1', 'lo'), { nil: undefined }),
    })
    .map(({ groups, widths, squeeze, v4Tail, upper, zone }) => {
      let parts = groups.map((g, i) => g.toString(16).padStart(widths[i]!, '0'));
      if (v4Tail) parts = [...parts.slice(0, 6), `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`];
      const runs: Array<[number, number]> = [];
      for (let i = 0; i < parts.length; i++) for (let j = i; j < parts.length && /^0+$/.test(parts[j]!); j++) runs.push([i, j + 1]);
      let text = parts.join(':');
      if (runs.length > 0 && squeeze % 3 !== 0) {
        const [from, to] = runs[squeeze % runs.length]!;
        text = `${parts.slice(0, from).join(':')}::${parts.slice(to).join(':')}`;
      }
      const spelled = `${upper ? text.toUpperCase() : text}${zone === undefined ? '' : `%${zone}`}`;
      return { spelled, hex: groups.map((g) => g.toString(16).padStart(4, '0')).join('') };
    });

  it('IPv4: the four octets reversed under in-addr.arpa, a name normalizeName keeps as it is', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const bytes = [...addressBytes(ip)];
        expect(reverseLabels(ip)).toBe(bytes.reverse().join('.'));
        expect(reverseName(ip)).toBe(`${reverseLabels(ip)}.in-addr.arpa`);
        expect(normalizeName(reverseName(ip))).toBe(reverseName(ip));
      }),
      { numRuns: 500 },
    );
  });

  it('IPv6: expandIPv6 gives the 32 nibbles of the address whatever its spelling; the reverse name has them reversed', () => {
    fc.assert(
      fc.property(ipv6, ({ spelled, hex }) => {
        expect(isIP(spelled), spelled).toBe(6);
        expect(expandIPv6(spelled)).toBe(hex);
        expect(reverseLabels(spelled)).toBe([...hex].reverse().join('.'));
        expect(reverseName(spelled)).toBe(`${reverseLabels(spelled)}.ip6.arpa`);
        expect(normalizeName(reverseName(spelled))).toBe(reverseName(spelled));
      }),
      { numRuns: 1000 },
    );
  });

  it('IPv6: expandIPv6 agrees on any address and its canonical form (RFC 5952, by the WHATWG URL parser)', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
        expect(expandIPv6(ip)).toMatch(/^[0-9a-f]{32}$/);
        expect(expandIPv6(ip)).toBe(expandIPv6(canonical));
      }),
      { numRuns: 1000 },
    );
  });

  it('anything that is not an IP address is a TypeError, never a wrong name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.ipV4Extended(), fc.constantFrom('1.2.3', '::g', '1:2:3:4:5:6:7:8:9', '::1.2.3.256', ':::')), (text) => {
        if (isIP(text) !== 0) return;
        expect(() => reverseLabels(text)).toThrow(TypeError);
        expect(() => reverseName(text)).toThrow(TypeError);
      }),
      { numRuns: 1000 },
    );
  });
});
