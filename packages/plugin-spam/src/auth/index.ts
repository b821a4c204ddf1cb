/**
 * DKIM and DMARC for a message the plugin read: the results, and the tests they give
 * (SpamAssassin's names: DKIM_VALID, DKIM_VALID_AU, DKIM_INVALID, DMARC_PASS,
 * DMARC_REJECT, DMARC_QUAR, DMARC_NONE, DMARC_MISSING).
 */
import type { DnsResolver } from '@mailgate/core';
import type { SpfResult } from '../spf/index.js';
import type { SpamTest } from '../score.js';
import { verifyDkim, type DkimCheck } from './dkim.js';
import { evaluateDmarc, isAligned, type DmarcResult } from './dmarc.js';
import { mailauthResolver } from './resolver-adapter.js';

export { MAX_FROM_BYTES } from './author.js';
export { verifyDkim, MAX_HEADER_LINES, MAX_SIGNATURE_FIELD, type DkimCheck, type DkimSignatureResult, type DkimResultCode } from './dkim.js';
export { evaluateDmarc, MAX_DOMAINS, isAligned, organizationalDomain, type DmarcResult, type DmarcPolicy, type DmarcResultCode } from './dmarc.js';
export { authResultsValue, type AuthResultsInput } from './auth-results.js';
export { mailauthResolver, nodeCode, NodeDnsError } from './resolver-adapter.js';

export interface DkimScores {
  valid: number;
  validAuthor: number;
  invalid: number;
  none: number;
}

export interface DmarcScores {
  pass: number;
  reject: number;
  quarantine: number;
  none: number;
  missing: number;
}

export interface AuthSettings {
  dkim: { enabled: boolean; maxSignatures: number; scores: DkimScores };
  dmarc: { enabled: boolean; scores: DmarcScores };
}

export interface AuthResult {
  dkim?: DkimCheck | undefined;
  dmarc?: DmarcResult | undefined;
}

/**
 * DKIM, then DMARC with its results and the envelope's SPF result. `signal` stops the DNS
 * lookups (each later one fails at once). Throws only what the caller's code throws on a
 * bug; DNS trouble becomes temperror results.
 */
export async function checkAuth(
  raw: Buffer,
  settings: AuthSettings,
  context: { dns: Pick<DnsResolver, 'resolve'>; spf?: SpfResult | undefined; signal?: AbortSignal | undefined; random?: () => number },
): Promise<AuthResult> {
  if (!settings.dkim.enabled && !settings.dmarc.enabled) return {};
  // Lookups: one key per signature, two for the newest ARC set (mailauth verifies its
  // ARC-Message-Signature and ARC-Seal along with the DKIM signatures), two DMARC records
  // per author domain (at most 5).
  const resolver = mailauthResolver(context.dns, { signal: context.signal, maxQueries: settings.dkim.maxSignatures + 2 + 10 });
  // DMARC needs the From: addresses and DKIM's results: with DKIM off, no signature is tried.
  const dkim = await verifyDkim(raw, { resolver, maxSignatures: settings.dkim.enabled ? settings.dkim.maxSignatures : 0 });
  const result: AuthResult = {};
  if (settings.dkim.enabled) result.dkim = dkim;
  if (settings.dmarc.enabled) {
    const spf = context.spf ? { result: context.spf.result, domain: context.spf.domain } : undefined;
    result.dmarc = await evaluateDmarc({ headerFrom: dkim.headerFrom, fromProblem: dkim.fromProblem, fromTooLarge: dkim.fromTooLarge === true, dkim: dkim.signatures, spf, resolver, ...(context.random ? { random: context.random } : {}) });
  }
  return result;
}

export function authTests(result: AuthResult, settings: AuthSettings): SpamTest[] {
  const tests: SpamTest[] = [];
  const dkim = result.dkim;
  if (dkim) {
    const scores = settings.dkim.scores;
    const passed = dkim.signatures.filter((s) => s.result === 'pass');
    const broken = dkim.signatures.filter((s) => s.result === 'fail' || s.result === 'permerror' || s.result === 'neutral' || s.result === 'policy');
    if (passed.length > 0) {
      tests.push({ name: 'DKIM_VALID', score: scores.valid, describe: `DKIM: valid signature from ${passed.map((s) => s.domain).join(', ')}` });
      const from = dkim.headerFrom.map((a) => a.slice(a.lastIndexOf('@') + 1));
      const author = passed.find((s) => s.domain && from.some((d) => isAligned(d, s.domain!, false)));
      if (author) tests.push({ name: 'DKIM_VALID_AU', score: scores.validAuthor, describe: `DKIM: valid signature from the author's domain ${author.domain}` });
    } else if (broken.length > 0) {
      const first = broken[0]!;
      tests.push({ name: 'DKIM_INVALID', score: scores.invalid, describe: `DKIM: signature${first.domain ? ` of ${first.domain}` : ''} does not verify (${first.result}${first.comment ? `: ${first.comment}` : ''})` });
    } else if (dkim.signatures.every((s) => s.result === 'none') && scores.none !== 0) {
      tests.push({ name: 'DKIM_NONE', score: scores.none, describe: 'DKIM: message not signed' });
    }
  }
  const dmarc = result.dmarc;
  if (dmarc) {
    const scores = settings.dmarc.scores;
    const d = dmarc.domain;
    // A From: that could not be evaluated (dmarc.ts) counts as a failure with policy reject.
    if (dmarc.result === 'permerror' && dmarc.disposition === 'reject') tests.push({ name: 'DMARC_REJECT', score: scores.reject, describe: `DMARC: ${dmarc.comment ?? 'From: not evaluated'}` });
    else if (dmarc.result === 'pass') tests.push({ name: 'DMARC_PASS', score: scores.pass, describe: `DMARC: ${d} passes (aligned ${dmarc.aligned?.dkim ? 'DKIM' : 'SPF'})` });
    else if (dmarc.result === 'fail') {
      const asked = dmarc.policy !== dmarc.disposition ? ` (p=${dmarc.policy}, pct=${dmarc.pct})` : '';
      if (dmarc.disposition === 'reject') tests.push({ name: 'DMARC_REJECT', score: scores.reject, describe: `DMARC: ${d} fails, its policy is reject` });
      else if (dmarc.disposition === 'quarantine') tests.push({ name: 'DMARC_QUAR', score: scores.quarantine, describe: `DMARC: ${d} fails, its policy is quarantine${asked}` });
      else tests.push({ name: 'DMARC_NONE', score: scores.none, describe: `DMARC: ${d} fails, its policy is none${asked}` });
    } else if (dmarc.result === 'none' && d && scores.missing !== 0) tests.push({ name: 'DMARC_MISSING', score: scores.missing, describe: `DMARC: ${d} has no DMARC policy` });
  }
  return tests;
}
