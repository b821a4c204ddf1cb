/**
 * IP addresses and CIDR networks, IPv4 and IPv6, as numbers. IPv4-mapped IPv6
 * addresses (`::ffff:192.0.2.1`) are IPv4 here, both in rules and for clients, so a
 * rule written either way matches a client seen either way.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Ip {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
}

const V6_BITS = 128;
const V4_BITS = 32;

/** Parse an IPv4 or IPv6 address (a zone id like `%eth0` is ignored); undefined if it is not one. */
export function parseIp(text: string): Ip | undefined {
  const t = text.trim();
  if (isIPv4(t)) return { family: 4, value: v4ToBigint(t) };
  const noZone = t.replace(/%[^%]*$/, '');
  if (!isIPv6(noZone)) return undefined;
  const value = v6ToBigint(noZone);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** Parse `192.0.2.0/24`, `2001:db8::/32`, `::ffff:192.0.2.0/120` or a bare address (a host route). */
export function parseCidr(text: string): Cidr | undefined {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const prefixText = slash < 0 ? undefined : t.slice(slash + 1);
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  if (addrText.includes('%')) return undefined;
  let family: 4 | 6;
  let value: bigint;
  if (isIPv4(addrText)) {
    family = 4;
    value = v4ToBigint(addrText);
  } else if (isIPv6(addrText)) {
    family = 6;
    value = v6ToBigint(addrText);
  } else return undefined;
  const bits = family === 4 ? V4_BITS : V6_BITS;
  let prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  // An IPv4-mapped network (::ffff:0:0/96 and longer) is an IPv4 network.
  if (family === 6 && prefix >= 96 && (value >> 32n) === 0xffffn) {
    family = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  return { family, network: value & mask(family, prefix), prefix };
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(family === 4 ? V4_BITS : V6_BITS);
  const p = BigInt(prefix);
  return ((1n << bits) - 1n) ^ ((1n << (bits - p)) - 1n);
}

function v4ToBigint(text: string): bigint {
  let v = 0n;
  for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function v6ToBigint(text: string): bigint {
  let addr = text.toLowerCase();
  // An embedded IPv4 tail ("::ffff:1.2.3.4", "64:ff9b::1.2.3.4") becomes two groups.
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(addr);
  if (v4?.[1]) {
    const n = v4ToBigint(v4[1]);
    addr = `${addr.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = addr.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  let v = 0n;
  for (const g of [...headGroups, ...fill, ...tailGroups]) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

/** The address in its usual text form (IPv4 dotted, IPv6 compressed lower case). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip.value >> s) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Why `text` is not an IP address or network, or undefined if it is one. */
export function cidrError(text: string): string | undefined {
  return parseCidr(text) ? undefined : `expected an IP address or a network like 192.0.2.0/24 or 2001:db8::/32, got ${JSON.stringify(text)}`;
}

/**
 * A set of networks with a lookup cost proportional to the number of distinct prefix
 * lengths, not the number of networks (block lists from files can be long).
 */
export class IpSet {
  private readonly byPrefix = new Map<string, Set<bigint>>();
  private readonly prefixes: Array<{ family: 4 | 6; prefix: number; mask: bigint; set: Set<bigint> }> = [];
  readonly size: number;

  constructor(networks: Iterable<Cidr>) {
    let size = 0;
    for (const n of networks) {
      const key = `${n.family}/${n.prefix}`;
      let set = this.byPrefix.get(key);
      if (!set) {
        set = new Set();
        this.byPrefix.set(key, set);
        this.prefixes.push({ family: n.family, prefix: n.prefix, mask: mask(n.family, n.prefix), set });
      }
      set.add(n.network);
      size++;
    }
    this.size = size;
  }

  has(ip: Ip | undefined): boolean {
    if (!ip) return false;
    for (const p of this.prefixes) {
      if (p.family === ip.family && p.set.has(ip.value & p.mask)) return true;
    }
    return false;
  }
}
