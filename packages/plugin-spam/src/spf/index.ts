/**
 * SPF (RFC 7208) on the core's DnsResolver: check_host() for the MAIL FROM and HELO
 * identities, and the Received-SPF header value.
 */
import { checkIdentity } from './check.js';
import type { SpfOptions, SpfQuery, SpfResult } from './types.js';

export type { SpfDns, SpfOptions, SpfQuery, SpfResult, SpfResultCode } from './types.js';
export { receivedSpfHeader } from './header.js';

/**
 * The MAIL FROM identity (§2.4): the sender's domain, or postmaster@helo for the null
 * reverse-path. Rejects only with the signal's reason on abort, or a TypeError when
 * `query.ip` is not an IP address or `options.dns` has no resolve().
 */
export function checkSpf(query: SpfQuery, options: SpfOptions): Promise<SpfResult> {
  return checkIdentity(query, options, 'mailfrom');
}

/** The HELO identity (§2.3): postmaster@helo, checked against the HELO name's policy. */
export function checkSpfHelo(query: SpfQuery, options: SpfOptions): Promise<SpfResult> {
  return checkIdentity(query, options, 'helo');
}
