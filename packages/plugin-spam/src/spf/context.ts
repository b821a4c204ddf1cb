/**
 * What stays the same through one check_host() evaluation, includes and redirects
 * included: the client, the sender, the HELO name, the DNS budget, and the macro values
 * derived from them. `d` is the only macro value that changes (per record).
 */
import { truncateDomain } from './domain.js';
import { dottedIp, readableIp, type ClientIp } from './ip.js';
import type { SpfLookups } from './lookups.js';
import { expandMacros, usesPtrMacro, type MacroToken, type MacroValues } from './macro.js';
import { validatedPtrName, type PtrCache } from './ptr.js';

export interface CheckContext {
  ip: ClientIp;
  /** <sender> with "postmaster" for an empty local-part (§4.3) */
  sender: string;
  local: string;
  senderDomain: string;
  helo: string;
  receiver: string;
  lookups: SpfLookups;
  ptr: PtrCache;
}

/** The macro values for a record of `domain`; `p` must be worked out first if used. */
export function macroValues(ctx: CheckContext, domain: string, p = 'unknown'): MacroValues {
  return {
    s: ctx.sender,
    l: ctx.local,
    o: ctx.senderDomain,
    d: domain,
    i: dottedIp(ctx.ip),
    p,
    v: ctx.ip.version === 4 ? 'in-addr' : 'ip6',
    h: ctx.helo,
    c: readableIp(ctx.ip),
    r: ctx.receiver,
    t: String(Math.floor(Date.now() / 1000)),
  };
}

/** Expand a macro-string, doing the %{p} lookups only when the string uses it. */
export async function expandWithPtr(ctx: CheckContext, tokens: readonly MacroToken[], domain: string): Promise<string> {
  const p = usesPtrMacro(tokens) ? await validatedPtrName(ctx.ptr, ctx.lookups, ctx.ip, domain) : 'unknown';
  return expandMacros(tokens, macroValues(ctx, domain, p));
}

/** Expand a domain-spec into the name to query (§7.3: truncated on the left to 253). */
export async function expandDomainSpec(ctx: CheckContext, tokens: readonly MacroToken[], domain: string): Promise<string> {
  return truncateDomain(await expandWithPtr(ctx, tokens, domain));
}
