/**
 * check_host() (RFC 7208 §4): fetch the domain's record, evaluate its mechanisms in
 * order (§5), fall back on redirect= (§6.1), and report which record's exp= applies if
 * the result is fail (§6.2; the text itself is fetched only at the top, see explanation.ts).
 * Errors are thrown as SpfError and end the whole evaluation.
 */
import { expandDomainSpec, type CheckContext } from './context.js';
import { isCheckableDomain } from './domain.js';
import { permerror } from './errors.js';
import { addressBytes, inNetwork } from './ip.js';
import type { MacroToken } from './macro.js';
import { isAtOrBelow, isValidated, ptrNames } from './ptr.js';
import { isSpfRecord, parseSpfRecord, type Directive, type Qualifier } from './record.js';

/** §4.6.4: an "mx" whose MX answer names more hosts than this is a permerror. */
export const MAX_MX_NAMES = 10;

/**
 * A selected record longer than this is a permerror before it is parsed. RFC 7208 sets
 * no limit, but asks (§3.4) for records that fit a 512-octet UDP answer; real ones are
 * under 4 KB, and the ten-lookup limit leaves nothing for a longer one to do. A zone can
 * answer up to 64 KB, and that much text is only ever work for us.
 */
export const MAX_SPF_RECORD_LENGTH = 8192;

export interface HostResult {
  result: 'none' | 'neutral' | 'pass' | 'fail' | 'softfail';
  mechanism?: string;
  /** on fail: the exp= of the record that failed, and that record's domain (for %{d}) */
  exp?: { tokens: MacroToken[]; domain: string };
}

const RESULT_OF: Record<Qualifier, 'pass' | 'fail' | 'softfail' | 'neutral'> = {
  '+': 'pass',
  '-': 'fail',
  '~': 'softfail',
  '?': 'neutral',
};

/** The TXT records of `domain` that are SPF version 1 records (§4.5). */
async function spfRecordsOf(ctx: CheckContext, domain: string): Promise<string[]> {
  const txt = await ctx.lookups.query(domain, 'TXT');
  return txt.map((chunks) => chunks.join('')).filter(isSpfRecord);
}

export async function checkHost(ctx: CheckContext, target: string): Promise<HostResult> {
  const domain = target.endsWith('.') ? target.slice(0, -1) : target;
  // §4.3: a malformed name, or one without a record (NXDOMAIN included), is "none"
  if (!isCheckableDomain(domain)) return { result: 'none' };
  const records = await spfRecordsOf(ctx, domain);
  if (records.length === 0) return { result: 'none' };
  if (records.length > 1) throw permerror(`${domain} has ${records.length} SPF records`);
  if (records[0]!.length > MAX_SPF_RECORD_LENGTH) {
    throw permerror(`${domain} has an SPF record of ${records[0]!.length} characters (more than ${MAX_SPF_RECORD_LENGTH})`);
  }
  const record = parseSpfRecord(records[0]!);

  for (const directive of record.directives) {
    if (!(await matches(ctx, directive, domain))) continue;
    const result = RESULT_OF[directive.qualifier];
    const exp = result === 'fail' && record.exp ? { tokens: record.exp, domain } : undefined;
    return { result, mechanism: directive.text, ...(exp && { exp }) };
  }
  if (record.redirect) {
    ctx.lookups.countTerm(record.redirect.text);
    const name = await expandDomainSpec(ctx, record.redirect.domain, domain);
    const redirected = await checkHost(ctx, name);
    // §6.1: a redirect to a domain without a record is a permerror, not none
    if (redirected.result === 'none') throw permerror(`${record.redirect.text}: ${name || '(empty)'} has no SPF record`);
    return redirected;
  }
  return { result: 'neutral', mechanism: 'default' };
}

async function matches(ctx: CheckContext, directive: Directive, domain: string): Promise<boolean> {
  const m = directive.mechanism;
  const term = directive.text;
  const targetOf = (tokens: MacroToken[] | undefined): Promise<string> =>
    tokens ? expandDomainSpec(ctx, tokens, domain) : Promise.resolve(domain);
  switch (m.kind) {
    case 'all':
      return true;
    case 'ip4':
    case 'ip6':
      return ctx.ip.version === (m.kind === 'ip4' ? 4 : 6) && inNetwork(ctx.ip.bytes, m.network, m.prefix);
    case 'include': {
      ctx.lookups.countTerm(term);
      const name = await targetOf(m.domain);
      const included = await checkHost(ctx, name);
      // §5.2: temperror and permerror propagate (thrown); none is a permerror
      if (included.result === 'none') throw permerror(`${term}: ${name || '(empty)'} has no SPF record`);
      return included.result === 'pass';
    }
    case 'a': {
      ctx.lookups.countTerm(term);
      const addresses = await addressesOf(ctx, await targetOf(m.domain));
      if (addresses.length === 0) ctx.lookups.countVoid(term);
      return matchesAny(ctx, addresses, m.cidr4, m.cidr6);
    }
    case 'mx': {
      ctx.lookups.countTerm(term);
      const mxs = await ctx.lookups.query(await targetOf(m.domain), 'MX');
      if (mxs.length === 0) ctx.lookups.countVoid(term);
      if (mxs.length > MAX_MX_NAMES) throw permerror(`${term}: more than ${MAX_MX_NAMES} MX records`);
      for (const mx of mxs) {
        const host = mx.exchange.replace(/\.$/, '');
        if (host === '') continue; // a null MX (RFC 7505) names no host
        if (matchesAny(ctx, await addressesOf(ctx, host), m.cidr4, m.cidr6)) return true;
      }
      return false;
    }
    case 'ptr': {
      ctx.lookups.countTerm(term);
      const target = await targetOf(m.domain);
      const names = await ptrNames(ctx.ptr, ctx.lookups, ctx.ip);
      if (names === 'error') return false; // §5.5: a DNS error on the PTR lookup is no match
      if (names.length === 0) ctx.lookups.countVoid(term);
      for (const name of names) {
        if (isAtOrBelow(name, target) && (await isValidated(ctx.ptr, ctx.lookups, ctx.ip, name))) return true;
      }
      return false;
    }
    case 'exists': {
      ctx.lookups.countTerm(term);
      // §5.7: always an A query, whatever the client's address family
      const addresses = await ctx.lookups.query(await targetOf(m.domain), 'A');
      if (addresses.length === 0) ctx.lookups.countVoid(term);
      return addresses.length > 0;
    }
  }
}

/** The client family's addresses of `name`: A for an IPv4 client, AAAA for IPv6 (§5.3). */
function addressesOf(ctx: CheckContext, name: string): Promise<string[]> {
  return ctx.lookups.query(name, ctx.ip.version === 4 ? 'A' : 'AAAA');
}

function matchesAny(ctx: CheckContext, addresses: string[], cidr4: number, cidr6: number): boolean {
  const prefix = ctx.ip.version === 4 ? cidr4 : cidr6;
  return addresses.some((a) => {
    const bytes = addressBytes(a);
    return bytes !== undefined && inNetwork(ctx.ip.bytes, bytes, prefix);
  });
}
