/**
 * IP addresses and CIDR networks, IPv4 and IPv6, as numbers: parse, format, match.
 *
 * A client address or a network written in a rule treats an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, from a dual-stack socket) as the IPv4 address it stands for, so
 * a rule written either way matches a client seen either way (`parseIp`, `parseCidr`).
 * `parseIpAsWritten` keeps the family the text has, for protocols that tell them apart.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { expandIPv6 } from '../dns/names.js';

export interface IpAddress {
  family: 4 | 6;
  /** The 32 or 128 bits of the address. */
  value: bigint;
}

export interface IpNetwork {
  family: 4 | 6;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
}

const V4_BITS = 32;
const V6_BITS = 128;
/** ::ffff:0:0/96, the IPv4-mapped IPv6 addresses, shifted right by 32 bits. */
const MAPPED = 0xffffn;

/**
 * An address exactly as written, as Node's `net.isIP` takes it: nothing trimmed; an
 * IPv6 zone id (`%eth0`) allowed but not part of the value; an IPv4-mapped IPv6 address
 * stays IPv6. Undefined if the text is not an address.
 */
export function parseIpAsWritten(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, value: v4Value(text) };
  if (isIPv6(text)) return { family: 6, value: v6Value(text) };
  return undefined;
}

/**
 * A client address: space around it and a zone id (`fe80::1%eth0`) are ignored, an
 * IPv4-mapped IPv6 address is IPv4. Undefined if it is not an IPv4 or IPv6 address.
 */
export function parseIp(text: string): IpAddress | undefined {
  const t = text.trim();
  if (isIPv4(t)) return { family: 4, value: v4Value(t) };
  const noZone = t.replace(/%[^%]*$/, '');
  if (!isIPv6(noZone)) return undefined;
  const value = v6Value(noZone);
  return value >> 32n === MAPPED ? { family: 4, value: value & 0xffffffffn } : { family: 6, value };
}

/**
 * A network: `192.0.2.0/24`, `2001:db8::/32`, `::ffff:192.0.2.0/120` (an IPv4 network)
 * or a bare address (a host route); space around it is ignored, a zone id is not
 * allowed, host bits are cleared. Undefined if it is not one.
 */
export function parseCidr(text: string): IpNetwork | undefined {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const prefixText = slash < 0 ? undefined : t.slice(slash + 1);
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  if (addrText.includes('%')) return undefined;
  const ip = parseIpAsWritten(addrText);
  if (!ip) return undefined;
  const prefix = prefixText === undefined ? bitsOf(ip.family) : Number(prefixText);
  return prefix > bitsOf(ip.family) ? undefined : ipNetwork(ip, prefix);
}

/**
 * The network of the first `prefix` bits of `ip` (0..32 or 0..128, else a RangeError).
 * An IPv4-mapped network (::ffff:0:0/96 and longer) is the IPv4 network it stands for.
 */
export function ipNetwork(ip: IpAddress, prefix: number): IpNetwork {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bitsOf(ip.family)) {
    throw new RangeError(`prefix length must be 0..${bitsOf(ip.family)}, got ${prefix}`);
  }
  if (ip.family === 6 && prefix >= 96 && ip.value >> 32n === MAPPED) {
    return ipNetwork({ family: 4, value: ip.value & 0xffffffffn }, prefix - 96);
  }
  return { family: ip.family, network: ip.value & mask(ip.family, prefix), prefix };
}

/** Why `text` is not an IP address or network (as `parseCidr` reads it), or undefined if it is one. */
export function cidrError(text: string): string | undefined {
  return parseCidr(text) ? undefined : `expected an IP address or a network like 192.0.2.0/24 or 2001:db8::/32, got ${JSON.stringify(text)}`;
}

/** The address in its usual text form: IPv4 dotted, IPv6 compressed and lower case (RFC 5952). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip.value >> s) & 0xffffn).toString(16));
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
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

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** The address as 4 or 16 bytes, network order. */
export function ipToBytes(ip: IpAddress): Uint8Array {
  const bytes = new Uint8Array(bitsOf(ip.family) / 8);
  let v = ip.value;
  for (let i = bytes.length - 1; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

/** An address from 4 (IPv4) or 16 (IPv6) bytes, network order; a RangeError for another length. */
export function ipFromBytes(bytes: Uint8Array): IpAddress {
  if (bytes.length !== 4 && bytes.length !== 16) throw new RangeError(`an IP address is 4 or 16 bytes, got ${bytes.length}`);
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

/**
 * A set of networks with a lookup cost proportional to the number of distinct prefix
 * lengths, not the number of networks (block lists from files can be long).
 */
export class IpSet {
  private readonly byPrefix = new Map<string, Set<bigint>>();
  private readonly prefixes: Array<{ family: 4 | 6; mask: bigint; set: Set<bigint> }> = [];
  readonly size: number;

  constructor(networks: Iterable<IpNetwork>) {
    let size = 0;
    for (const n of networks) {
      const key = `${n.family}/${n.prefix}`;
      let set = this.byPrefix.get(key);
      if (!set) {
        set = new Set();
        this.byPrefix.set(key, set);
        this.prefixes.push({ family: n.family, mask: mask(n.family, n.prefix), set });
      }
      set.add(n.network);
      size++;
    }
    this.size = size;
  }

  has(ip: IpAddress | undefined): boolean {
    if (!ip) return false;
    for (const p of this.prefixes) {
      if (p.family === ip.family && p.set.has(ip.value & p.mask)) return true;
    }
    return false;
  }
}

function bitsOf(family: 4 | 6): number {
  return family === 4 ? V4_BITS : V6_BITS;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const p = BigInt(prefix);
  return ((1n << bits) - 1n) ^ ((1n << (bits - p)) - 1n);
}

function v4Value(text: string): bigint {
  let v = 0n;
  for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function v6Value(text: string): bigint {
  return BigInt(`0x${expandIPv6(text)}`);
}
