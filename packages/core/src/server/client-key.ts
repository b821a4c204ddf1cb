import { isIPv4, isIPv6 } from 'node:net';

/**
 * What `limits.maxConnectionsPerIp` counts by: an IPv4 address as it is, an IPv6
 * address by its first `ipv6PrefixLength` bits (`2001:db8:0:0:0:0:0:0/64`), because one
 * host is commonly given a whole /64 and could otherwise open a connection from each
 * of its 2^64 addresses. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, also written
 * `::ffff:c000:201`) count as the IPv4 address. A zone (`fe80::1%eth0`) is dropped.
 * Anything else (an empty string from a socket already gone) is its own key.
 */
export function clientKey(ip: string, ipv6PrefixLength: number): string {
  if (isIPv4(ip)) return ip;
  const zone = ip.indexOf('%');
  const address = zone < 0 ? ip : ip.slice(0, zone);
  const groups = isIPv6(address) ? ipv6Groups(address) : undefined;
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi, lo] = [groups[6]!, groups[7]!];
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  const bits = Math.max(0, Math.min(128, ipv6PrefixLength));
  const masked = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` and a trailing dotted IPv4 part expanded). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // A dotted IPv4 tail is the last two groups: "::ffff:1.2.3.4", "64:ff9b::1.2.3.4", "::1.2.3.4".
    const [a = 0, b = 0, c = 0, d = 0] = text.slice(lastColon + 1).split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    const before = text.slice(0, lastColon + 1);
    text = before.endsWith('::') ? before : before.slice(0, -1);
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const fill = 8 - tail.length - left.length - right.length;
  if (fill < 0 || (rest === undefined && fill !== 0)) return undefined;
  return [...left, ...new Array<number>(fill).fill(0), ...right, ...tail];
}
