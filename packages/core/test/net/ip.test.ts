import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cidrError,
  formatIp,
  ipFromBytes,
  ipNetwork,
  IpSet,
  ipToBytes,
  parseCidr,
  parseIp,
  parseIpAsWritten,
  sameIp,
} from '../../src/index.js';

function ipset(...entries: string[]): IpSet {
  return new IpSet(entries.map((e) => parseCidr(e)!));
}

describe('IP addresses and networks', () => {
  it('matches IPv4 networks and hosts', () => {
    const set = ipset('192.0.2.0/24', '198.51.100.7', '10.0.0.0/8');
    expect(set.size).toBe(3);
    expect(set.has(parseIp('192.0.2.200'))).toBe(true);
    expect(set.has(parseIp('192.0.3.1'))).toBe(false);
    expect(set.has(parseIp('198.51.100.7'))).toBe(true);
    expect(set.has(parseIp('198.51.100.8'))).toBe(false);
    expect(set.has(parseIp('10.255.255.255'))).toBe(true);
    expect(set.has(undefined)).toBe(false);
    expect(new IpSet([]).has(parseIp('192.0.2.1'))).toBe(false);
  });

  it('matches IPv6 networks, ::1 and compressed forms', () => {
    const set = ipset('2001:db8::/32', '::1', 'fe80::/10');
    expect(set.has(parseIp('2001:db8:ffff::1'))).toBe(true);
    expect(set.has(parseIp('2001:0DB8:0000::0001'))).toBe(true);
    expect(set.has(parseIp('2001:db9::1'))).toBe(false);
    expect(set.has(parseIp('::1'))).toBe(true);
    expect(set.has(parseIp('0:0:0:0:0:0:0:1'))).toBe(true);
    expect(set.has(parseIp('::2'))).toBe(false);
    expect(set.has(parseIp('fe80::1%lo'))).toBe(true);
  });

  it('treats IPv4-mapped IPv6 as IPv4, in rules and for clients', () => {
    expect(parseIp('::ffff:192.0.2.1')).toEqual(parseIp('192.0.2.1'));
    expect(parseIp('::ffff:c000:201')).toEqual(parseIp('192.0.2.1'));
    expect(parseIp('::FFFF:192.0.2.1%eth0')).toEqual(parseIp('192.0.2.1'));
    expect(ipset('192.0.2.0/24').has(parseIp('::ffff:192.0.2.9'))).toBe(true);
    expect(ipset('::ffff:192.0.2.0/120').has(parseIp('192.0.2.9'))).toBe(true);
    expect(ipset('::ffff:192.0.2.0/120').has(parseIp('192.0.3.9'))).toBe(false);
    expect(ipset('::ffff:0:0/96').has(parseIp('203.0.113.1'))).toBe(true);
    expect(parseCidr('::ffff:192.0.2.0/120')).toEqual({ family: 4, network: 0xc0000200n, prefix: 24 });
    // IPv4 and IPv6 never mix otherwise.
    expect(ipset('::/0').has(parseIp('127.0.0.1'))).toBe(false);
    expect(ipset('::ffff:0:0/95').has(parseIp('127.0.0.1'))).toBe(false);
    expect(ipset('0.0.0.0/0').has(parseIp('::1'))).toBe(false);
    expect(ipset('0.0.0.0/0').has(parseIp('127.0.0.1'))).toBe(true);
  });

  it('reads client addresses leniently and nothing else', () => {
    expect(parseIp(' 192.0.2.1\n')).toEqual({ family: 4, value: 0xc0000201n });
    expect(parseIp('fe80::1%eth0')).toEqual(parseIp('fe80::1'));
    expect(parseIp('fe80::1%')).toEqual(parseIp('fe80::1'));
    for (const bad of ['', 'example.com', '192.0.2', '192.0.2.1.5', '1.2.3.04', '192.0.2.1%eth0', '::g', '1::2::3', '[::1]', '192.0.2.0/24']) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it('reads an address as written: mapped IPv6 stays IPv6', () => {
    expect(parseIpAsWritten('::ffff:192.0.2.1')).toEqual({ family: 6, value: 0xffffc0000201n });
    expect(parseIpAsWritten('192.0.2.1')).toEqual({ family: 4, value: 0xc0000201n });
    expect(parseIpAsWritten('fe80::1%eth0')).toEqual({ family: 6, value: 0xfe80000000000000_0000000000000001n });
    expect(parseIpAsWritten(' 192.0.2.1')).toBeUndefined();
    expect(parseIpAsWritten('fe80::1%')).toBeUndefined();
    expect(parseIpAsWritten('1.2.3.4/32')).toBeUndefined();
  });

  it('masks host bits and refuses what is not a network', () => {
    expect(ipset('192.0.2.77/24').has(parseIp('192.0.2.1'))).toBe(true);
    expect(parseCidr(' 2001:db8::1/32 ')).toEqual({ family: 6, network: 0x20010db8n << 96n, prefix: 32 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, network: 0n, prefix: 0 });
    for (const bad of ['192.0.2.0/33', '2001:db8::/129', '192.0.2', 'example.com', '192.0.2.0/', '192.0.2.0/-1', '1.2.3.4/8x', '::1%lo/128', 'fe80::1%eth0', '1.2.3.4/ 8']) {
      expect(parseCidr(bad), bad).toBeUndefined();
      expect(cidrError(bad), bad).toMatch(/expected an IP address/);
    }
    expect(cidrError('192.0.2.0/24')).toBeUndefined();
  });

  it('builds a network from an address and a prefix length', () => {
    const ip = parseIpAsWritten('2001:db8::1')!;
    expect(ipNetwork(ip, 32)).toEqual(parseCidr('2001:db8::/32'));
    expect(ipNetwork(ip, 128)).toEqual(parseCidr('2001:db8::1'));
    expect(ipNetwork(parseIpAsWritten('::ffff:192.0.2.1')!, 120)).toEqual(parseCidr('192.0.2.0/24'));
    expect(ipNetwork(parseIpAsWritten('::ffff:192.0.2.1')!, 80).family).toBe(6);
    expect(() => ipNetwork(parseIpAsWritten('192.0.2.1')!, 33)).toThrow(RangeError);
    expect(() => ipNetwork(ip, -1)).toThrow(RangeError);
    expect(() => ipNetwork(ip, 1.5)).toThrow(RangeError);
  });

  it('formats addresses', () => {
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('2001:DB8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIp(parseIp('::1')!)).toBe('::1');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatIp(parseIp('1::')!)).toBe('1::');
    expect(formatIp(parseIp('::ffff:10.1.2.3')!)).toBe('10.1.2.3');
    expect(formatIp(parseIpAsWritten('::ffff:10.1.2.3')!)).toBe('::ffff:a01:203');
  });

  it('compares addresses by family and value', () => {
    expect(sameIp(parseIp('::ffff:192.0.2.1')!, parseIp('192.0.2.1')!)).toBe(true);
    expect(sameIp(parseIpAsWritten('::ffff:192.0.2.1')!, parseIp('192.0.2.1')!)).toBe(false);
    expect(sameIp(parseIp('::1')!, parseIp('0:0::1')!)).toBe(true);
    expect(sameIp(parseIp('::1')!, parseIp('0.0.0.1')!)).toBe(false);
  });

  it('converts to and from bytes in network order', () => {
    expect([...ipToBytes(parseIp('192.0.2.1')!)]).toEqual([192, 0, 2, 1]);
    expect([...ipToBytes(parseIp('2001:db8::ff')!)]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
    expect(ipFromBytes(Uint8Array.of(192, 0, 2, 1))).toEqual(parseIp('192.0.2.1'));
    expect(() => ipFromBytes(new Uint8Array(5))).toThrow(RangeError);
  });
});

describe('IP addresses, property-based', () => {
  const v4Bytes = fc.uint8Array({ minLength: 4, maxLength: 4 });
  // Runs of zero groups are what compression is about: bias towards them.
  const v6Bytes = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((groups) => {
    const bytes = new Uint8Array(16);
    groups.forEach((g, i) => {
      bytes[2 * i] = g >> 8;
      bytes[2 * i + 1] = g & 0xff;
    });
    return bytes;
  });

  it('format → parse → bytes gives the bytes back', () => {
    fc.assert(
      fc.property(fc.oneof(v4Bytes, v6Bytes), (bytes) => {
        const ip = ipFromBytes(bytes);
        const again = parseIpAsWritten(formatIp(ip));
        expect(again).toEqual(ip);
        expect([...ipToBytes(again!)]).toEqual([...bytes]);
      }),
    );
  });

  it('IPv6 text is the one of RFC 5952, as the WHATWG URL parser writes it', () => {
    fc.assert(
      fc.property(v6Bytes, (bytes) => {
        const text = formatIp(ipFromBytes(bytes));
        expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
      }),
    );
  });

  it('a network holds exactly the addresses that share its first prefix bits', () => {
    fc.assert(
      fc.property(fc.oneof(fc.tuple(v4Bytes, v4Bytes), fc.tuple(v6Bytes, v6Bytes)), fc.integer({ min: 0, max: 128 }), ([a, b], n) => {
        const prefix = n % (a.length * 8 + 1);
        const ip = ipFromBytes(a);
        const other = ipFromBytes(b);
        const bits = BigInt(a.length * 8 - prefix);
        const expected = ip.value >> bits === other.value >> bits;
        // As the family is written: parseIpAsWritten and ipNetwork on the raw values never fold.
        if (ip.family === 6 && (ip.value >> 32n === 0xffffn || other.value >> 32n === 0xffffn)) return;
        expect(new IpSet([ipNetwork(ip, prefix)]).has(other)).toBe(expected);
      }),
    );
  });
});
