/**
 * Client addresses as SPF sees them (RFC 7208 §5): an IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1) is the IPv4 client it stands for, so `ip4` and `a` match it and
 * `ip6` does not. Addresses are kept as bytes so CIDR matching is exact for both families.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { reverseName } from '@mailgate/core';

export interface ClientIp {
  version: 4 | 6;
  /** 4 or 16 bytes, network order */
  bytes: Uint8Array;
}

/** Parse a client address; undefined when it is not an IPv4 or IPv6 address. A zone id is dropped. */
export function parseClientIp(text: string): ClientIp | undefined {
  if (typeof text !== 'string') return undefined;
  const ip = text.trim().replace(/%.*$/, '');
  if (isIPv4(ip)) return { version: 4, bytes: ipv4Bytes(ip) };
  if (!isIPv6(ip)) return undefined;
  const bytes = ipv6Bytes(ip);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? { version: 4, bytes: bytes.slice(12) } : { version: 6, bytes };
}

/**
 * The strict `ip4-network` of RFC 7208 §5.6: four decimal octets without leading zeros
 * (so "1.2.3.04" is a syntax error, not 1.2.3.4).
 */
export function parseIp4Network(text: string): Uint8Array | undefined {
  const qnum = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
  return new RegExp(`^${qnum}\\.${qnum}\\.${qnum}\\.${qnum}$`).test(text) ? ipv4Bytes(text) : undefined;
}

/** An `ip6-network` (RFC 4291 §2.2 text form, no zone id). */
export function parseIp6Network(text: string): Uint8Array | undefined {
  return !text.includes('%') && isIPv6(text) ? ipv6Bytes(text) : undefined;
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

/** An address string as returned by the resolver (A or AAAA), as bytes of its family. */
export function addressBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return ipv4Bytes(text);
  if (isIPv6(text)) return ipv6Bytes(text);
  return undefined;
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
  if (ip.version === 4) return [...ip.bytes].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  // longest run of two or more zero groups becomes "::" (the first one on a tie)
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((n) => n.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** The name whose PTR records name the client (in-addr.arpa / ip6.arpa): the core's reverseName. */
export function reverseLookupName(ip: ClientIp): string {
  return reverseName(readableIp(ip));
}

function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

/** 16 bytes of a valid IPv6 address (handles "::" and an embedded IPv4 tail). */
function ipv6Bytes(ip: string): Uint8Array {
  let addr = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4?.[1]) {
    const o = v4[1].split('.').map(Number);
    addr = `${addr.slice(0, -v4[1].length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head = '', tail] = addr.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const bytes = new Uint8Array(16);
  [...headGroups, ...fill, ...tailGroups].forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  });
  return bytes;
}
