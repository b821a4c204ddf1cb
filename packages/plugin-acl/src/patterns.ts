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
 *   /^bounce-.*@/i      a regular expression, tested against the whole lower-cased address
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

/** Glob → anchored regex: `*` any run (possibly empty), `?` one character, everything else literal. */
export function globToRegExp(glob: string, flags = ''): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, `s${flags}`);
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
  if (re) return (a) => a !== null && re.test(full(a));
  if (t.startsWith('/')) return `${JSON.stringify(t)}: a regular expression must look like /.../flags`;
  const at = t.lastIndexOf('@');
  if (isGlob(t)) {
    if (at >= 0) {
      const g = globToRegExp(`${asciiLower(t.slice(0, at))}@${canonicalDomain(t.slice(at + 1))}`);
      return (a) => a !== null && g.test(full(a));
    }
    const g = globToRegExp(canonicalDomain(t));
    return (a) => a !== null && a.domain !== '' && g.test(a.domain);
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
  if (re) return (name) => re.test(name);
  if (t.startsWith('/')) return `${JSON.stringify(t)}: a regular expression must look like /.../flags`;
  const h = canonicalHost(t);
  if (isGlob(h)) {
    const g = globToRegExp(h);
    return (name) => g.test(name);
  }
  if (h.startsWith('.')) return (name) => name.endsWith(h) && name.length > h.length;
  return (name) => name === h;
}

/** Compile one user name pattern (names compare without ASCII case). */
export function compileUserPattern(text: string): NamePredicate | string {
  const t = text.trim();
  if (t === '') return 'empty pattern';
  const re = parseRegExp(t);
  if (typeof re === 'string') return re;
  if (re) return (name) => re.test(name);
  const u = asciiLower(t);
  if (isGlob(u)) {
    const g = globToRegExp(u);
    return (name) => g.test(name);
  }
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
