/**
 * Why a lookup failed. Callers (MX resolution per RFC 5321 §5, DNSBL, SPF) mostly need
 * one bit: is the answer a definitive "no" (bounce / not listed) or a failure that may
 * go away (tempfail, retry later)? That bit is `DnsError.temporary`.
 *
 * NODATA (the name exists but has no record of the asked type) is deliberately NOT an
 * error: lookups resolve to an empty array, so `[]` = NODATA, `DnsError('NXDOMAIN')` =
 * the name does not exist, and a temporary `DnsError` = ask again later.
 */
export type DnsErrorCode =
  /** The name does not exist (RCODE 3). Permanent. */
  | 'NXDOMAIN'
  /** The server failed to answer (RCODE 2). Temporary. */
  | 'SERVFAIL'
  /** The server refused the query (RCODE 5). Temporary: another server may answer. */
  | 'REFUSED'
  /** The server could not parse our query (RCODE 1), even without EDNS. Temporary. */
  | 'FORMERR'
  /** The server does not implement the query (RCODE 4). Temporary. */
  | 'NOTIMP'
  /** A response that could not be decoded or made no sense. Temporary. */
  | 'BADRESP'
  /** Every attempt on every server timed out. Temporary. */
  | 'TIMEOUT'
  /** Network error talking to a server (connection refused or reset, send failed). Temporary. */
  | 'NETERR'
  /** A CNAME chain that loops or is longer than 8 hops. Temporary (a broken zone may be fixed; BIND answers SERVFAIL). */
  | 'CNAMELOOP'
  /** The name cannot be a DNS name (empty label, label > 63 octets, name > 253, non-ASCII). Permanent. */
  | 'BADNAME';

const PERMANENT: ReadonlySet<DnsErrorCode> = new Set<DnsErrorCode>(['NXDOMAIN', 'BADNAME']);

export class DnsError extends Error {
  override readonly name = 'DnsError';
  readonly code: DnsErrorCode;
  /** true unless the failure is a definitive answer (NXDOMAIN, BADNAME). */
  readonly temporary: boolean;
  /** The name that was asked for (as given by the caller, normalized), if known. */
  readonly hostname: string | undefined;

  constructor(code: DnsErrorCode, message: string, options: { hostname?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.temporary = !PERMANENT.has(code);
    this.hostname = options.hostname;
  }
}

export function isDnsError(err: unknown): err is DnsError {
  return err instanceof DnsError;
}
