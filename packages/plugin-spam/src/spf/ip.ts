/**
 * Client addresses as SPF sees them (RFC 7208 §5): an IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1) is the IPv4 client it stands for, so `ip4` and `a` match it and
 * `ip6` does not. Addresses are kept as bytes so CIDR matching is exact for both families.
 */
import { formatIp, ipFromBytes, ipToBytes, parseIp, parseIpAsWritten, reverseName } from '@mailgate/core';

export interface ClientIp {
  version: 4 | 6;
  /** 4 or 16 bytes, network order */
  bytes: Uint8Array;
}

/** Parse a client address; undefined when it is not an IPv4 or IPv6 address. A zone id is dropped. */
export function parseClientIp(text: string): ClientIp | undefined {
  if (typeof text !== 'string') return undefined;
  // Everything from the first "%" is the zone id, also after an IPv4 address (the core's
  // parseIp refuses "192.0.2.1%eth0"): the client address SPF has always taken.
  const ip = parseIp(text.trim().replace(/%.*$/, ''));
  return ip && { version: ip.family, bytes: ipToBytes(ip) };
}

/**
 * The strict `ip4-network` of RFC 7208 §5.6: four decimal octets without leading zeros
 * (so "1.2.3.04" is a syntax error, not 1.2.3.4).
 */
export function parseIp4Network(text: string): Uint8Array | undefined {
  const qnum = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
  const ip = new RegExp(`^${qnum}\\.${qnum}\\.${qnum}\\.${qnum}$`).test(text) ? parseIpAsWritten(text) : undefined;
  return ip && ipToBytes(ip);
}

/**
 * An `ip6-network` (RFC 4291 §2.2 text form, no zone id), as written: `ip6:::ffff:192.0.2.0/120`
 * stays an IPv6 network (the core's parseCidr would make it an IPv4 one), and an
 * IPv4-mapped client, IPv4 for SPF (RFC 7208 §5), never matches it.
 */
export function parseIp6Network(text: string): Uint8Array | undefined {
  const ip = text.includes('%') ? undefined : parseIpAsWritten(text);
  return ip?.family === 6 ? ipToBytes(ip) : undefined;
}

/** Do the first `prefix` bits of `a` and `b` agree? (same length arrays) */
export function inNetwork(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  if (a.length !== b.length) return false;
  const full = Math.floor(prefix / 8);
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rest = prefix % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[full] ?? 0) & mask) === ((b[full] ?? 0) & mask);
}

/**
 * An address string as returned by the resolver (A or AAAA), as bytes of its family as
 * written: an AAAA record ::ffff:192.0.2.1 stays IPv6 and does not match the IPv4 client
 * 192.0.2.1 (RFC 7208 §5: an IPv4 client is compared with A records, an IPv6 one with AAAA).
 */
export function addressBytes(text: string): Uint8Array | undefined {
  const ip = parseIpAsWritten(text);
  return ip && ipToBytes(ip);
}

/** %{i}: dotted quad, or 32 dot-separated nibbles for IPv6 (upper case, as in the RFC 7208 §7.4 example). */
export function dottedIp(ip: ClientIp): string {
  if (ip.version === 4) return [...ip.bytes].join('.');
  return [...ip.bytes]
    .flatMap((b) => [b >> 4, b & 0x0f])
    .map((n) => n.toString(16).toUpperCase())
    .join('.');
}

/** %{c}: the readable form; IPv6 compressed and lower case (RFC 5952). */
export function readableIp(ip: ClientIp): string {
  return formatIp(ipFromBytes(ip.bytes));
}

/** The name whose PTR records name the client (in-addr.arpa / ip6.arpa): the core's reverseName. */
export function reverseLookupName(ip: ClientIp): string {
  return reverseName(readableIp(ip));
}
