/**
 * mailauth asks DNS through a dns.promises.resolve()-like function and reads Node's error
 * codes: ENOTFOUND and ENODATA mean "no record" (no key, no DMARC policy), anything else
 * a temporary failure (temperror). The core's DnsResolver says the same things its own
 * way: NXDOMAIN is a DnsError, NODATA an empty array. This adapter translates, so DKIM
 * and DMARC go through the gateway's shared resolver (its servers, timeouts and cache)
 * like every other check.
 */
import { DnsError, type DnsResolver } from '@mailgate/core';
import type { MailauthResolver } from './mailauth.js';

/** A Node-style DNS error: what mailauth's `err.code` checks expect. */
export class NodeDnsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hostname: string,
  ) {
    super(message);
  }
}

/** The Node code for a DnsError: permanent "no such name" is ENOTFOUND, the rest temporary. */
export function nodeCode(error: unknown): string {
  if (!(error instanceof DnsError)) return 'ESERVFAIL';
  switch (error.code) {
    case 'NXDOMAIN':
    case 'BADNAME': // a name that cannot exist has no record either
      return 'ENOTFOUND';
    case 'TIMEOUT':
      return 'ETIMEOUT';
    case 'REFUSED':
      return 'EREFUSED';
    default:
      return 'ESERVFAIL';
  }
}

export interface AdapterOptions {
  /** stop: every later query fails at once (mailauth then gives temperror, and the caller stops waiting) */
  signal?: AbortSignal | undefined;
  /** at most this many queries; later ones fail as temporary (hostile messages must not make us a DNS cannon) */
  maxQueries?: number;
}

/**
 * TXT records longer than this (chunks joined) are not handed to mailauth: they are
 * left out as if not published. A DMARC record is a few hundred characters and a DKIM
 * key record under 1 KB (about 1.5 KB even for an 8192-bit RSA key); a zone can answer
 * up to 64 KB, which would only be text for mailauth to split, unfold and base64-check.
 * Left out rather than failed: DMARC keeps only "v=DMARC1" records anyway, and a key
 * record that long is no usable key.
 */
export const MAX_AUTH_TXT_LENGTH = 8192;

/** Only TXT is needed (DKIM keys, DMARC records); other types are refused rather than asked. */
export function mailauthResolver(dns: Pick<DnsResolver, 'resolve'>, options: AdapterOptions = {}): MailauthResolver {
  let queries = 0;
  const max = options.maxQueries ?? 50;
  return async (name: string, rrtype: string): Promise<unknown[]> => {
    if (options.signal?.aborted) throw new NodeDnsError('ECANCELLED', `${name}: lookup cancelled`, name);
    if (rrtype !== 'TXT') throw new NodeDnsError('ENOTIMP', `${name}: ${rrtype} lookups are not used`, name);
    if (++queries > max) throw new NodeDnsError('ESERVFAIL', `${name}: more than ${max} lookups for one message`, name);
    let answer: string[][];
    try {
      answer = await dns.resolve(name, 'TXT');
    } catch (error) {
      throw new NodeDnsError(nodeCode(error), error instanceof Error ? error.message : String(error), name);
    }
    const records = answer.filter((chunks) => chunks.reduce((n, c) => n + c.length, 0) <= MAX_AUTH_TXT_LENGTH);
    if (records.length === 0) {
      const why = answer.length === 0 ? 'no TXT record' : `no TXT record of at most ${MAX_AUTH_TXT_LENGTH} characters`;
      throw new NodeDnsError('ENODATA', `${name}: ${why}`, name);
    }
    return records;
  };
}
