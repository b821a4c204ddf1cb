/**
 * Trusted networks: CIDRs whose clients are never scored (like SpamAssassin's
 * trusted_networks or rspamd's local_addrs). Node's BlockList does the matching, so
 * IPv4, IPv6 and IPv4-mapped IPv6 addresses are handled without a second IP parser.
 */
import { BlockList, isIP } from 'node:net';

/** `192.0.2.0/24`, `2001:db8::/32` or a bare address (a /32 or /128). Undefined if well formed, else why not. */
export function cidrError(text: string): string | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `expected an IP address or network such as 192.0.2.0/24, got "${text}"`;
  if (slash < 0) return undefined;
  const prefix = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `prefix length of "${text}" must be 0..${max}`;
  return undefined;
}

export class NetworkList {
  private readonly list = new BlockList();
  readonly size: number;

  /** `cidrs` must have passed cidrError. */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      const bits = prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix);
      this.list.addSubnet(address, bits, family);
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const family = isIP(address);
    if (family === 0) return false;
    // BlockList matches an IPv4-mapped IPv6 address against IPv4 rules only when asked as IPv6; ask both ways.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (mapped && this.list.check(mapped, 'ipv4')) return true;
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}
