/**
 * Checking one identity (RFC 7208 §2.3 HELO, §2.4 MAIL FROM): turn the SMTP facts into
 * check_host() arguments, run it, and fold its errors and the explanation into an
 * SpfResult. Only an abort (the signal's reason) and a caller error (not an IP address,
 * no resolver) are thrown.
 */
import { isCheckableDomain } from './domain.js';
import { SpfError } from './errors.js';
import { checkHost } from './evaluate.js';
import { explanationOf } from './explanation.js';
import { parseClientIp } from './ip.js';
import { SpfLookups } from './lookups.js';
import { newPtrCache } from './ptr.js';
import type { CheckContext } from './context.js';
import type { SpfOptions, SpfQuery, SpfResult } from './types.js';

export type SpfIdentity = 'mailfrom' | 'helo';

export async function checkIdentity(query: SpfQuery, options: SpfOptions, identity: SpfIdentity): Promise<SpfResult> {
  const ip = parseClientIp(query?.ip);
  if (!ip) throw new TypeError(`SPF: not an IP address: ${JSON.stringify(query?.ip)}`);
  if (typeof options?.dns?.resolve !== 'function') throw new TypeError('SPF: options.dns must have resolve()');
  const signal = options.signal;
  signal?.throwIfAborted();

  const helo = stringOr(query.helo, '').replace(/\.$/, '');
  const mailFrom = stringOr(query.sender, '');
  // §2.4: with a null reverse-path the MAIL FROM check is the HELO check
  const address = identity === 'helo' || mailFrom === '' ? `postmaster@${helo}` : mailFrom;
  const at = address.lastIndexOf('@');
  // §4.3: no local-part → "postmaster"; an address without "@" is taken as a bare domain
  const local = at > 0 ? address.slice(0, at) : 'postmaster';
  const domain = (at >= 0 ? address.slice(at + 1) : address).replace(/\.$/, '');
  const base = { domain, identity } as const;
  if (!isCheckableDomain(domain)) return { result: 'none', ...base, problem: `not a checkable domain: ${JSON.stringify(domain)}` };

  const ctx: CheckContext = {
    ip,
    sender: `${local}@${domain}`,
    local,
    senderDomain: domain,
    helo,
    receiver: stringOr(query.receiver, '') || 'unknown',
    lookups: new SpfLookups(
      options.dns,
      { maxLookups: limit(options.maxLookups, 10), maxVoidLookups: limit(options.maxVoidLookups, 2) },
      signal,
    ),
    ptr: newPtrCache(),
  };
  try {
    const host = await checkHost(ctx, domain);
    const result: SpfResult = { result: host.result, ...base };
    if (host.mechanism !== undefined) result.mechanism = host.mechanism;
    if (host.exp) {
      const explanation = await explanationOf(ctx, host.exp);
      if (explanation !== undefined) result.explanation = explanation;
    }
    return result;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (err instanceof SpfError) return { result: err.result, ...base, problem: err.message };
    // not expected: a bug or a resolver that throws oddly; a temporary failure is the safe reading
    return { result: 'temperror', ...base, problem: `SPF check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function limit(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : fallback;
}
