/**
 * Canonical forms of domains, host names and addresses for comparisons.
 *
 * Only ASCII letters are case-folded. JavaScript's toLowerCase() also folds some
 * non-ASCII characters onto ASCII ones (KELVIN SIGN U+212A → "k", U+0130 → "i̇"), and
 * IDNA/UTS 46 mapping folds full-width letters ("ｅｘａｍｐｌｅ") onto ASCII: either would let
 * a look-alike domain compare equal to a local one. Internationalized names are compared
 * in their A-label (punycode) form, and only when the U-label is already in the
 * canonical form IDNA 2008 requires (NFC, lower case, no mapping needed); anything
 * else keeps its own spelling and never equals an ASCII domain.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/** Lower-case ASCII letters only. */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * The canonical comparison form of a domain: ASCII-lower-cased, one trailing dot
 * dropped, U-labels turned into A-labels when (and only when) that is lossless.
 * Address literals (`[192.0.2.1]`) are returned ASCII-lower-cased.
 */
export function canonicalDomain(domain: string): string {
  let d = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  d = asciiLower(d);
  if (!NON_ASCII.test(d) || d.startsWith('[')) return d;
  const ascii = domainToASCII(d);
  if (!ascii) return d;
  // Round trip: mapping (width, case, compatibility forms) would change the name.
  if (domainToUnicode(ascii) !== d) return d;
  return ascii;
}

/** Canonical host name (HELO, PTR): same rules as a domain. */
export function canonicalHost(name: string): string {
  return canonicalDomain(name.trim());
}

/** A domain name as configured: ASCII or IDN labels, no wildcard, optional trailing dot. */
export function domainError(text: string): string | undefined {
  const d = canonicalDomain(text.trim());
  if (d.length === 0 || d.length > 253) return `expected a domain name, got ${JSON.stringify(text)}`;
  if (NON_ASCII.test(d)) return `${JSON.stringify(text)} is not a valid internationalized domain name (write it in lower case, NFC, or as its xn-- form)`;
  const ok = d.split('.').every((label) => /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/.test(label));
  return ok ? undefined : `expected a domain name like "example.com", got ${JSON.stringify(text)}`;
}
