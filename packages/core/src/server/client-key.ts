import { isIPv4, isIPv6 } from 'node:net';
import { expandIPv6 } from '../dns/names.js';

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
  if (!isIPv6(zone < 0 ? ip : ip.slice(0, zone))) return ip;
  const hex = expandIPv6(ip);
  const groups = Array.from({ length: 8 }, (_, i) => parseInt(hex.slice(i * 4, i * 4 + 4), 16));
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
