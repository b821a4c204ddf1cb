/**
 * Name helpers: normalization (DNS names compare case-insensitively, a trailing dot is
 * the same name) and reverse-lookup names for IPv4 and IPv6.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { DnsError } from './errors.js';

// Printable ASCII and the space, without the dot and the backslash. Any octet may be in a
// label (RFC 2181 §11) and names built by macros (SPF's exists:%{...}, RFC 7208 §7) can hold
// spaces; dns-packet writes labels verbatim. A label over 63 octets would be encoded as a
// compression pointer, so it is refused here instead of producing a corrupt query.
const LABEL = /^[\x20-\x2d\x2f-\x5b\x5d-\x7e]{1,63}$/;

/**
 * Lower-case `name` and drop one trailing dot. Throws `DnsError('BADNAME')` for names that
 * cannot be sent (empty, empty label, label > 63, name > 253 octets, non-ASCII: convert
 * IDNs with `url.domainToASCII` first).
 */
export function normalizeName(name: string): string {
  if (typeof name !== 'string') throw new TypeError('DNS name must be a string');
  const n = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (n.length === 0 || n.length > 253 || !n.split('.').every((label) => LABEL.test(label))) {
    throw new DnsError('BADNAME', `not a valid DNS name: ${JSON.stringify(name)}`, { hostname: name });
  }
  return n;
}

/** Compare two names as DNS does (case-insensitive, trailing dot ignored). */
export function sameName(a: string, b: string): boolean {
  return stripDot(a).toLowerCase() === stripDot(b).toLowerCase();
}

function stripDot(name: string): string {
  return name.length > 1 && name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * The labels of an address in reverse order, without the arpa suffix: "2.0.0.127" for
 * 127.0.0.2, 32 nibbles for IPv6. This is also the DNSBL query prefix (RFC 5782).
 */
export function reverseLabels(ip: string): string {
  if (isIPv4(ip)) return ip.split('.').reverse().join('.');
  if (isIPv6(ip)) return [...expandIPv6(ip)].reverse().join('.');
  throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
}

/** The PTR name of an address: "2.0.0.127.in-addr.arpa" or "<32 nibbles>.ip6.arpa". */
export function reverseName(ip: string): string {
  return `${reverseLabels(ip)}.${isIPv4(ip) ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

/** The 32 hex digits of a valid IPv6 address (handles "::", an embedded IPv4 tail and a zone). */
export function expandIPv6(ip: string): string {
  let addr = ip.toLowerCase().replace(/%.*$/, ''); // zone id is not part of the address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4?.[1]) {
    const octets = v4[1].split('.').map(Number);
    const hex = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
    addr = addr.slice(0, -v4[1].length) + `${hex(octets[0]!, octets[1]!)}:${hex(octets[2]!, octets[3]!)}`;
  }
  const [head = '', tail] = addr.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...fill, ...tailGroups].map((g) => g.padStart(4, '0')).join('');
}
