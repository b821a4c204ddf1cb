/**
 * DMARC (RFC 7489) for the author domains of a message: mailauth finds and parses the
 * policy record (_dmarc.<From domain>, then _dmarc.<organizational domain>); the rest is
 * here because mailauth 4.13's evaluation does not honour adkim=s/aspf=s (it always
 * falls back to relaxed matching) and leaves pct to the caller. SPF is the plugin's own
 * result for the envelope (never evaluated a second time); DKIM is verifyDkim's.
 */
import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';
import { getDmarcRecord, type MailauthResolver } from './mailauth.js';
import type { DkimSignatureResult } from './dkim.js';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type DmarcResultCode = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

export interface DmarcResult {
  result: DmarcResultCode;
  /** the RFC5322.From domain evaluated (header.from) */
  domain: string;
  /** on pass/fail: the policy the domain asks for (sp= for a subdomain when the record is the organizational domain's) */
  policy?: DmarcPolicy;
  /**
   * on fail: what to do after pct= sampling (RFC 7489 §6.6.4: the rest get the next weaker
   * policy); on permerror for a From: that cannot be evaluated: reject (fail closed)
   */
  disposition?: DmarcPolicy;
  p?: string;
  sp?: string;
  pct?: number;
  /** the identifiers that aligned */
  aligned?: { dkim?: string; spf?: string };
  comment?: string;
}

export interface DmarcInput {
  /** every address of the From: field(s) */
  headerFrom: readonly string[];
  /** the From: field(s) could not be fully read (author.ts): see evaluateDmarc for when that fails closed */
  fromProblem?: string | undefined;
  /** the From: field(s) were too large to read: their authors are unknown, so it fails closed */
  fromTooLarge?: boolean;
  dkim: readonly DkimSignatureResult[];
  /** the envelope's SPF result (MAIL FROM, or the HELO identity for the null sender) */
  spf?: { result: string; domain: string } | undefined;
  resolver: MailauthResolver;
  /** [0, 1); for pct= sampling (tests inject it) */
  random?: () => number;
}

/**
 * At most this many author domains are looked up: a From: with 50 addresses must not cost
 * 100 lookups. A From: with more is not evaluated at all but fails closed (see below).
 */
export const MAX_DOMAINS = 5;

/**
 * The DMARC result of a message. Several author domains (RFC 7489 §6.6.1) are each
 * evaluated and the strictest outcome is kept, so a second address cannot hide a forged one.
 *
 * A From: that could hide a domain fails closed: more distinct author domains than
 * MAX_DOMAINS, a From: too large to parse, or an unreadable author beside real ones give
 * `permerror` with disposition `reject`. Evaluating only some of the authors would let a
 * forged one ride along unchecked (the 6th address, an address hidden in a group), and
 * §6.6.1 lets a receiver reject mail whose authors it cannot evaluate. A From: with no
 * usable domain at all (`From: root (Cron Daemon)`, `user@localhost`,
 * `undisclosed-recipients:;`) claims no domain anyone could have forged: `none`, like a
 * message without a From: field (out of DMARC's scope, §6.6.1).
 */
export async function evaluateDmarc(input: DmarcInput): Promise<DmarcResult> {
  const domains: string[] = [];
  let problem = input.fromProblem;
  for (const address of input.headerFrom) {
    const domain = domainOf(address);
    if (domain === undefined) problem ??= `From: author without a usable domain ("${address.slice(0, 64)}")`;
    else if (!domains.includes(domain)) {
      domains.push(domain);
      if (domains.length > MAX_DOMAINS) {
        problem ??= `From: with more than ${MAX_DOMAINS} author domains`;
        break;
      }
    }
  }
  if (domains.length === 0 && !input.fromTooLarge) return { result: 'none', domain: '', comment: problem ? `no From: domain (${problem})` : 'no From: domain' };
  if (problem) return { result: 'permerror', domain: domains[0] ?? '', disposition: 'reject', comment: `${problem}: not evaluated, treated as a DMARC failure` };
  const results = await Promise.all(domains.map((domain) => evaluateDomain(domain, input)));
  return results.reduce((worst, r) => (severity(r) > severity(worst) ? r : worst));
}

async function evaluateDomain(domain: string, input: DmarcInput): Promise<DmarcResult> {
  let record;
  try {
    record = await getDmarcRecord(domain, input.resolver);
  } catch (error) {
    // DNS trouble is never a reason to refuse: temperror scores nothing and rejects nothing.
    return { result: 'temperror', domain, comment: `DMARC record lookup failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!record) return { result: 'none', domain, comment: 'no DMARC record' };

  const p = policyOf(record.p);
  const sp = policyOf(record.sp);
  // §6.6.3: a record without a valid p= is a p=none record (when it is a DMARC record at all).
  const base = p ?? 'none';
  const policy: DmarcPolicy = record.isOrgRecord && sp ? sp : base;
  const pct = typeof record.pct === 'number' && Number.isFinite(record.pct) ? Math.min(100, Math.max(0, record.pct)) : 100;
  const strictDkim = (record.adkim ?? '').trim().toLowerCase() === 's';
  const strictSpf = (record.aspf ?? '').trim().toLowerCase() === 's';

  const aligned: { dkim?: string; spf?: string } = {};
  const dkim = input.dkim.find((s) => s.result === 'pass' && s.domain && isAligned(domain, s.domain, strictDkim));
  if (dkim?.domain) aligned.dkim = dkim.domain.toLowerCase();
  if (input.spf?.result === 'pass' && input.spf.domain && isAligned(domain, input.spf.domain, strictSpf)) aligned.spf = input.spf.domain.toLowerCase();

  const out: DmarcResult = { result: aligned.dkim || aligned.spf ? 'pass' : 'fail', domain, policy, pct, aligned };
  if (record.p !== undefined) out.p = String(record.p);
  if (record.sp !== undefined) out.sp = String(record.sp);
  if (!p) out.comment = `no valid p= in the record ("${String(record.p ?? '')}"): taken as p=none`;
  if (out.result === 'fail') {
    const sampled = pct >= 100 || (input.random ?? Math.random)() * 100 < pct;
    out.disposition = sampled ? policy : weaker(policy);
  }
  return out;
}

function policyOf(value: unknown): DmarcPolicy | undefined {
  const v = typeof value === 'string' ? value.trim().toLowerCase() : '';
  return v === 'none' || v === 'quarantine' || v === 'reject' ? v : undefined;
}

function weaker(policy: DmarcPolicy): DmarcPolicy {
  return policy === 'reject' ? 'quarantine' : 'none';
}

/** RFC 7489 §3.1: strict is the same name; relaxed the same organizational domain. */
export function isAligned(fromDomain: string, other: string, strict: boolean): boolean {
  const a = normalize(fromDomain);
  const b = normalize(other);
  if (!a || !b) return false;
  if (a === b) return true;
  if (strict) return false;
  return organizationalDomain(a) === organizationalDomain(b);
}

/** The registered domain by the Public Suffix List (private section included, as mailauth's record lookup does). */
export function organizationalDomain(domain: string): string {
  return getDomain(domain, { allowPrivateDomains: true }) ?? domain;
}

function normalize(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  return domainToASCII(d) || d;
}

function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = normalize(address.slice(at + 1));
  // Only names that can be asked: a From: domain is attacker-chosen text.
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(domain) && domain.length <= 253 ? domain : undefined;
}

function severity(r: DmarcResult): number {
  if (r.result === 'permerror' && r.disposition === 'reject') return 7;
  if (r.result === 'fail') return r.disposition === 'reject' ? 7 : r.disposition === 'quarantine' ? 6 : 5;
  return { temperror: 4, permerror: 3, pass: 2, none: 1 }[r.result];
}
