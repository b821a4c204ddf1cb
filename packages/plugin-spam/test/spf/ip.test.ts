/** SPF's own view of addresses, where it differs from the core's parseIp / parseCidr. */
import { describe, expect, it } from 'vitest';
import { addressBytes, inNetwork, parseClientIp, parseIp4Network, parseIp6Network, readableIp, reverseLookupName } from '../../src/spf/ip.js';

describe('SPF addresses', () => {
  it('an IPv4-mapped client is the IPv4 client (RFC 7208 §5)', () => {
    expect(parseClientIp('::ffff:192.0.2.1')).toEqual({ version: 4, bytes: Uint8Array.of(192, 0, 2, 1) });
    expect(parseClientIp('::FFFF:c000:201')).toEqual(parseClientIp('192.0.2.1'));
    expect(parseClientIp(' 2001:db8::1%eth0 ')?.version).toBe(6);
    // a zone id is dropped from the first "%", after an IPv4 address too
    expect(parseClientIp('192.0.2.1%eth0')).toEqual(parseClientIp('192.0.2.1'));
    expect(parseClientIp('192.0.2')).toBeUndefined();
    expect(parseClientIp(undefined as unknown as string)).toBeUndefined();
  });

  it('ip4 and ip6 networks and resolved addresses keep the family they are written in', () => {
    expect(parseIp4Network('1.2.3.04')).toBeUndefined();
    expect(parseIp4Network('192.0.2.1')).toEqual(Uint8Array.of(192, 0, 2, 1));
    expect(parseIp6Network('::ffff:192.0.2.0')).toHaveLength(16);
    expect(parseIp6Network('192.0.2.0')).toBeUndefined();
    expect(parseIp6Network('fe80::1%eth0')).toBeUndefined();
    expect(addressBytes('::ffff:192.0.2.1')).toHaveLength(16);
    expect(addressBytes('192.0.2.1')).toHaveLength(4);
    expect(addressBytes('mail.example')).toBeUndefined();
    const client = parseClientIp('::ffff:192.0.2.1')!;
    expect(inNetwork(client.bytes, parseIp6Network('::ffff:192.0.2.0')!, 120)).toBe(false);
    expect(inNetwork(client.bytes, parseIp4Network('192.0.2.0')!, 24)).toBe(true);
  });

  it('writes the client for %{c} and its PTR name', () => {
    expect(readableIp(parseClientIp('2001:DB8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(readableIp(parseClientIp('::ffff:192.0.2.1')!)).toBe('192.0.2.1');
    expect(reverseLookupName(parseClientIp('192.0.2.1')!)).toBe('1.2.0.192.in-addr.arpa');
  });
});
