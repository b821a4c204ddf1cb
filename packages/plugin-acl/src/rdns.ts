/**
 * Forward-confirmed reverse DNS (FCrDNS, "iprev" in RFC 8601): the client's PTR names
 * whose A (IPv4 client) or AAAA (IPv6 client) records contain the client's address.
 * A PTR name that does not resolve back is not the client's name: anyone can put any
 * name in the PTR records of their own addresses.
 */
import { isDnsError, parseIp, sameIp, type DnsResolver, type IpAddress } from '@mailgate/core';
import { canonicalHost } from './names.js';

export interface RdnsResult {
  /** Verified names, canonical (lower case, no trailing dot). Empty: none. */
  names: string[];
  /** A lookup failed temporarily and no name could be verified: the answer is unknown. */
  temporary: boolean;
}

/** At most this many PTR names are checked (a client could publish hundreds). */
const MAX_PTR_NAMES = 10;

export async function forwardConfirmedNames(dns: DnsResolver, address: string): Promise<RdnsResult> {
  const ip = parseIp(address);
  if (!ip) return { names: [], temporary: false };
  let ptrs: string[];
  try {
    ptrs = await dns.reverse(address);
  } catch (error) {
    return { names: [], temporary: !isDnsError(error) || error.temporary };
  }
  let temporary = false;
  const checks = ptrs.slice(0, MAX_PTR_NAMES).map(async (name): Promise<string | undefined> => {
    try {
      const addresses = ip.family === 4 ? await dns.resolve4(name) : await dns.resolve6(name);
      return addresses.some((a) => matches(a, ip)) ? canonicalHost(name) : undefined;
    } catch (error) {
      if (!isDnsError(error) || error.temporary) temporary = true;
      return undefined;
    }
  });
  const names = (await Promise.all(checks)).filter((n): n is string => n !== undefined);
  return { names: [...new Set(names)], temporary: names.length === 0 && temporary };
}

function matches(text: string, ip: IpAddress): boolean {
  const other = parseIp(text);
  return other !== undefined && sameIp(other, ip);
}
