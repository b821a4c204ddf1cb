/**
 * Patterns for addresses, domains, host names and user names.
 *
 * Address patterns (sender, recipient, a user's own addresses):
 *   user@example.com    that address (local part and domain compared without ASCII case)
 *   user@               that local part at any domain
 *   @example.com        any address at that domain   (also written without the @: example.com)
 *   .example.com        any address at a subdomain of example.com (not example.com itself)
 *   *@*.example.com     a glob (* any run of characters, ? one character); with an @ it is
 *                       matched against the whole address, without one against the domain
 *                       (a linear-time matcher, not a RegExp: safe on hostile input)
 *   /^bounce-.*@/i      a regular expression, tested against the whole lower-cased address
 *                       (backtracking: the configuration's responsibility; subjects over
 *                       MAX_REGEX_SUBJECT characters never match one)
 *   <>                  the null sender (bounces)
 *
 * Host name patterns (HELO name, verified reverse DNS name): `mail.example.com` (exact),
 * `.example.com` (subdomains), globs and regular expressions, matched lower-cased
 * without a trailing dot. User patterns: exact name (ASCII case-insensitive), glob, regex.
 */
import { asciiLower, canonicalDomain, canonicalHost } from './names.js';

/** An address as the ACL compares it. `null` is the null sender `<>`. */
export interface MatchAddress {
  /** Local part, ASCII-lower-cased. */
  local: string;
  /** Canonical domain ('' for `<postmaster>`). */
  domain: string;
}

export type AddressPredicate = (address: MatchAddress | null) => boolean;
export type NamePredicate = (name: string) => boolean;

export function toMatchAddress(address: { local: string; domain: string } | null): MatchAddress | null {
  if (!address) return null;
  return { local: asciiLower(address.local), domain: canonicalDomain(address.domain) };
}

function full(a: MatchAddress): string {
  return a.domain === '' ? a.local : `${a.local}@${a.domain}`;
}

const REGEX_RE = /^\/(.+)\/([a-z]*)$/s;

function isGlob(text: string): boolean {
  return /[*?]/.test(text);
}

/** Work counter for {@link matchGlob} (tests assert on it instead of on the clock). */
export interface GlobStats {
  steps: number;
}

/** A compiled glob: one entry per code point, `STAR`/`ANY` for the wildcards, runs of `*` collapsed. */
const STAR = 0;
const ANY = 1;
type GlobToken = typeof STAR | typeof ANY | string;

function globTokens(glob: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  for (const ch of glob) {
    if (ch === '*') {
      if (tokens.at(-1) !== STAR) tokens.push(STAR);
    } else tokens.push(ch === '?' ? ANY : ch);
  }
  return tokens;
}

/**
 * Match a glob against a subject, whole and case-sensitively: `*` any run of characters
 * (possibly empty), `?` exactly one character (code point), everything else literal.
 *
 * No regular expression: the classic two-pointer match that, on a mismatch, backtracks
 * only to the most recent `*` (an earlier star can never do better than a later one, since
 * the later one absorbs anything the earlier one would have). Worst case
 * O(subject × glob) steps, whatever the input: hostile HELO names, PTR names and
 * addresses cannot make it backtrack exponentially the way `.*.*.*` does in a RegExp.
 */
export function matchGlob(glob: string | readonly GlobToken[], subject: string, stats?: GlobStats): boolean {
  const g = typeof glob === 'string' ? globTokens(glob) : glob;
  const s = Array.from(subject);
  const m = g.length;
  const n = s.length;
  let gi = 0;
  let si = 0;
  let starGi = -1; // index of the last `*` seen in the glob
  let starSi = 0; // where that star's run currently ends in the subject
  let steps = 0;
  while (si < n) {
    steps++;
    const t = gi < m ? g[gi] : undefined;
    if (t === STAR) {
      // Let the star match nothing for now; remember where to resume on a mismatch.
      starGi = gi++;
      starSi = si;
    } else if (t !== undefined && (t === ANY || t === s[si])) {
      gi++;
      si++;
    } else if (starGi >= 0) {
      // Mismatch: the last star takes one more character, and the rest is retried after it.
      gi = starGi + 1;
      si = ++starSi;
    } else {
      if (stats) stats.steps += steps;
      return false;
    }
  }
  // The subject is used up: only stars (matching nothing) may remain.
  while (gi < m && g[gi] === STAR) {
    steps++;
    gi++;
  }
  if (stats) stats.steps += steps;
  return gi === m;
}

/** Compile a glob once (see {@link matchGlob}). */
export function compileGlob(glob: string): NamePredicate {
  const tokens = globTokens(glob);
  return (subject) => matchGlob(tokens, subject);
}

/**
 * Longest subject (in UTF-16 code units) a user-supplied `/regex/` is tested against; a
 * longer one never matches it. Regular expressions run on V8's backtracking engine, so a
 * careless one (`/^(a+)+$/`, `/(.*-){4}/`) can take exponential time on hostile input: the
 * bound caps that cost (it does not remove it: keep regular expressions simple). No
 * legitimate subject comes near it (an address is at most 256 octets, a domain or host
 * name 255); only a HELO name could, if the core lets long ones through (its
 * `limits.maxCommandLineLength` raised). "Never matches" rather than "tested on a
 * prefix", so that an `accept` rule cannot match by accident.
 */
export const MAX_REGEX_SUBJECT = 512;

function regexPredicate(re: RegExp): NamePredicate {
  return (subject) => subject.length <= MAX_REGEX_SUBJECT && re.test(subject);
}

function parseRegExp(text: string): RegExp | string | undefined {
  const m = REGEX_RE.exec(text);
  if (!m) return undefined;
  const flags = m[2] ?? '';
  if (/[gy]/.test(flags)) return `regular expression ${text}: the g and y flags are not allowed (they make test() stateful)`;
  try {
    return new RegExp(m[1]!, flags);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return `invalid regular expression ${text}: ${why.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`;
  }
}

/** Compile one address pattern, or return why it is invalid. */
export function compileAddressPattern(text: string): AddressPredicate | string {
  const t = text.trim();
  if (t === '') return 'empty pattern';
  if (t === '<>') return (a) => a === null;
  const re = parseRegExp(t);
  if (typeof re === 'string') return re;
  if (re) {
    const test = regexPredicate(re);
    return (a) => a !== null && test(full(a));
  }
  if (t.startsWith('/')) return `${JSON.stringify(t)}: a regular expression must look like /.../flags`;
  const at = t.lastIndexOf('@');
  if (isGlob(t)) {
    if (at >= 0) {
      const g = compileGlob(`${asciiLower(t.slice(0, at))}@${canonicalDomain(t.slice(at + 1))}`);
      return (a) => a !== null && g(full(a));
    }
    const g = compileGlob(canonicalDomain(t));
    return (a) => a !== null && a.domain !== '' && g(a.domain);
  }
  if (at < 0 || at === 0) {
    // A domain: "example.com", "@example.com", ".example.com", "@.example.com".
    const d = canonicalDomain(at === 0 ? t.slice(1) : t);
    if (d === '' || d === '.') return `${JSON.stringify(t)}: empty domain`;
    if (d.startsWith('.')) return (a) => a !== null && a.domain.endsWith(d) && a.domain.length > d.length;
    return (a) => a !== null && a.domain === d;
  }
  const local = asciiLower(t.slice(0, at));
  const domainPart = t.slice(at + 1);
  if (domainPart === '') return (a) => a !== null && a.local === local;
  const d = canonicalDomain(domainPart);
  if (d.startsWith('.')) return (a) => a !== null && a.local === local && a.domain.endsWith(d) && a.domain.length > d.length;
  return (a) => a !== null && a.local === local && a.domain === d;
}

/** Compile one host name pattern, or return why it is invalid. */
export function compileHostPattern(text: string): NamePredicate | string {
  const t = text.trim();
  if (t === '') return 'empty pattern';
  const re = parseRegExp(t);
  if (typeof re === 'string') return re;
  if (re) return regexPredicate(re);
  if (t.startsWith('/')) return `${JSON.stringify(t)}: a regular expression must look like /.../flags`;
  const h = canonicalHost(t);
  if (isGlob(h)) return compileGlob(h);
  if (h.startsWith('.')) return (name) => name.endsWith(h) && name.length > h.length;
  return (name) => name === h;
}

/** Compile one user name pattern (names compare without ASCII case). */
export function compileUserPattern(text: string): NamePredicate | string {
  const t = text.trim();
  if (t === '') return 'empty pattern';
  const re = parseRegExp(t);
  if (typeof re === 'string') return re;
  if (re) return regexPredicate(re);
  const u = asciiLower(t);
  if (isGlob(u)) return compileGlob(u);
  return (name) => name === u;
}

/** Canonical comparison form of a user name. */
export function canonicalUser(name: string): string {
  return asciiLower(name);
}

/** Any-of combination; an empty list matches nothing. */
export function anyOf<T>(predicates: ReadonlyArray<(value: T) => boolean>): (value: T) => boolean {
  if (predicates.length === 0) return () => false;
  if (predicates.length === 1) return predicates[0]!;
  return (value) => predicates.some((p) => p(value));
}

export { canonicalHost };
