/**
 * Domain names in SPF: which identities can be checked at all (RFC 7208 §4.3), the
 * `domain-end` rule of domain-specs (§7.1), and the left truncation of long expanded
 * names (§7.3).
 */
import type { MacroToken } from './macro.js';

/**
 * Printable ASCII without the dot and the backslash: what the core's resolver accepts in a
 * label, less the space (a domain to check has none; only macro-built names may).
 */
const LABEL = /^[\x21-\x2d\x2f-\x5b\x5d-\x7e]{1,63}$/;

/** toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
const DOMAIN_END = /\.(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])\.?$/i;

/**
 * §4.3: a malformed domain (empty or over-long label, over 253 octets, a single label)
 * is not checked: the result is "none". So are a domain literal ("[192.0.2.1]") and a
 * bare address, which a client may give as HELO but which no one can publish SPF for.
 */
export function isCheckableDomain(domain: string): boolean {
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (name.length === 0 || name.length > 253 || name.startsWith('[')) return false;
  const labels = name.split('.');
  if (/^\d+$/.test(labels.at(-1) ?? '')) return false;
  return labels.length >= 2 && labels.every((label) => LABEL.test(label));
}

/** domain-end = ( "." toplabel [ "." ] ) / macro-expand */
export function hasValidDomainEnd(tokens: readonly MacroToken[]): boolean {
  const last = tokens.at(-1);
  if (!last) return false;
  return last.kind === 'macro' || DOMAIN_END.test(last.text);
}

/**
 * §7.3: an expanded name over 253 characters loses labels on the left until it fits.
 * A trailing dot is dropped (it says nothing to a stub resolver).
 */
export function truncateDomain(expanded: string): string {
  let name = expanded.endsWith('.') ? expanded.slice(0, -1) : expanded;
  while (name.length > 253) {
    const dot = name.indexOf('.');
    if (dot < 0) return '';
    name = name.slice(dot + 1);
  }
  return name;
}
