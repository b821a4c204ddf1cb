/**
 * Trusted networks: CIDRs whose clients are never scored (like SpamAssassin's
 * trusted_networks or rspamd's local_addrs). The core's IP module parses and matches,
 * so IPv4, IPv6 and IPv4-mapped IPv6 addresses are handled as everywhere else.
 */
import { ipNetwork, IpSet, parseIp, parseIpAsWritten, type IpAddress } from '@mailgate/core';

/** `192.0.2.0/24`, `2001:db8::/32` or a bare address (a /32 or /128). Undefined if well formed, else why not. */
export function cidrError(text: string): string | undefined {
  const slash = text.indexOf('/');
  const ip = parseIpAsWritten(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return `expected an IP address or network such as 192.0.2.0/24, got "${text}"`;
  if (slash < 0) return undefined;
  const prefix = text.slice(slash + 1);
  const max = ip.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `prefix length of "${text}" must be 0..${max}`;
  return undefined;
}

export class NetworkList {
  private readonly set: IpSet;
  readonly size: number;

  /** `cidrs` must have passed cidrError. */
  constructor(cidrs: readonly string[]) {
    this.set = new IpSet(
      cidrs.map((cidr) => {
        const [address, prefix] = cidr.split('/') as [string, string | undefined];
        const ip = parseIpAsWritten(address);
        if (!ip) throw new TypeError(`not a network: ${JSON.stringify(cidr)}`);
        return ipNetwork(ip, prefix === undefined ? (ip.family === 4 ? 32 : 128) : Number(prefix));
      }),
    );
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const ip = parseIp(address);
    if (!ip) return false;
    // Trusted networks have always matched as Node's BlockList does: an IPv4 client is
    // also in the IPv6 networks that hold its mapped form, so `::/0` trusts every client.
    return this.set.has(ip) || (ip.family === 4 && this.set.has(mappedIpv6(ip)));
  }
}

/** ::ffff:a.b.c.d for an IPv4 address. */
function mappedIpv6(ip: IpAddress): IpAddress {
  return { family: 6, value: (0xffffn << 32n) | ip.value };
}
