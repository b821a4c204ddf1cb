/**
 * Selecting and parsing SPF records (RFC 7208 §4.5, §4.6, §5, §6, ABNF in §12). The
 * whole record is parsed before anything is evaluated, so a syntax error anywhere is a
 * permerror even when an earlier mechanism would have matched (§4.6).
 */
import { hasValidDomainEnd } from './domain.js';
import { permerror } from './errors.js';
import { parseIp4Network, parseIp6Network } from './ip.js';
import { parseMacroString, type MacroToken } from './macro.js';

export type Qualifier = '+' | '-' | '~' | '?';

export type Mechanism =
  | { kind: 'all' }
  | { kind: 'include'; domain: MacroToken[] }
  | { kind: 'a' | 'mx'; domain: MacroToken[] | undefined; cidr4: number; cidr6: number }
  | { kind: 'ptr'; domain: MacroToken[] | undefined }
  | { kind: 'ip4' | 'ip6'; network: Uint8Array; prefix: number }
  | { kind: 'exists'; domain: MacroToken[] };

export interface Directive {
  qualifier: Qualifier;
  mechanism: Mechanism;
  /** the term as written, for SpfResult.mechanism */
  text: string;
}

export interface SpfRecord {
  directives: Directive[];
  redirect: { domain: MacroToken[]; text: string } | undefined;
  exp: MacroToken[] | undefined;
}

/** §4.5: "v=spf1" (any case) followed by a space or the end of the record. */
export function isSpfRecord(text: string): boolean {
  return /^v=spf1(?: |$)/i.test(text);
}

/** Parse a selected record; throws a permerror SpfError on any syntax error. */
export function parseSpfRecord(text: string): SpfRecord {
  // §3.1 / §4.6.1: the record is 7-bit ASCII and terms are separated by spaces only, so
  // a control character (tab, CR, LF, NUL) or a non-ASCII octet anywhere is an error.
  const bad = /[^\x20-\x7e]/.exec(text);
  if (bad) throw permerror(`invalid character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} in SPF record`);
  const [version, ...terms] = text.split(' ').filter((t) => t !== '');
  if (version?.toLowerCase() !== 'v=spf1') throw permerror('not an SPF version 1 record');
  const record: SpfRecord = { directives: [], redirect: undefined, exp: undefined };
  for (const term of terms) {
    const modifier = /^([a-zA-Z][a-zA-Z0-9\-_.]*)=(.*)$/.exec(term);
    if (modifier) addModifier(record, modifier[1]!.toLowerCase(), modifier[2]!, term);
    else record.directives.push(parseDirective(term));
  }
  return record;
}

function addModifier(record: SpfRecord, name: string, value: string, term: string): void {
  switch (name) {
    case 'redirect':
      if (record.redirect) throw permerror('more than one redirect= modifier');
      record.redirect = { domain: parseDomainSpec(value, term), text: term };
      return;
    case 'exp':
      if (record.exp) throw permerror('more than one exp= modifier');
      record.exp = parseDomainSpec(value, term);
      return;
    default:
      // §6: unknown modifiers are ignored, but their value must still be a macro-string
      parseMacroString(value, 'modifier');
  }
}

function parseDirective(term: string): Directive {
  const m = /^([+\-~?]?)([a-zA-Z][a-zA-Z0-9]*)(.*)$/.exec(term);
  if (!m) throw permerror(`invalid term ${JSON.stringify(term)}`);
  const qualifier = (m[1] || '+') as Qualifier;
  const name = m[2]!.toLowerCase();
  const rest = m[3]!;
  return { qualifier, mechanism: parseMechanism(name, rest, term), text: term };
}

function parseMechanism(name: string, rest: string, term: string): Mechanism {
  switch (name) {
    case 'all':
      if (rest !== '') break;
      return { kind: 'all' };
    case 'include':
    case 'exists':
      if (!rest.startsWith(':')) break;
      return { kind: name, domain: parseDomainSpec(rest.slice(1), term) };
    case 'ptr':
      if (rest === '') return { kind: 'ptr', domain: undefined };
      if (!rest.startsWith(':')) break;
      return { kind: 'ptr', domain: parseDomainSpec(rest.slice(1), term) };
    case 'a':
    case 'mx': {
      let domain: MacroToken[] | undefined;
      let cidr = rest;
      if (rest.startsWith(':')) {
        // a domain-spec may hold "/" itself ("a:foo:bar/baz.example.com"): the cidr is
        // only what, at the very end, has the form of a dual-cidr-length
        const split = /^(.*?)((?:\/\d+)?(?:\/\/\d+)?)$/s.exec(rest.slice(1))!;
        domain = parseDomainSpec(split[1]!, term);
        cidr = split[2]!;
      }
      const lengths = /^(?:\/(\d+))?(?:\/\/(\d+))?$/.exec(cidr);
      if (!lengths) break;
      return { kind: name, domain, cidr4: prefixLength(lengths[1], 32, term), cidr6: prefixLength(lengths[2], 128, term) };
    }
    case 'ip4':
    case 'ip6': {
      if (!rest.startsWith(':')) break;
      const slash = rest.indexOf('/');
      const address = slash < 0 ? rest.slice(1) : rest.slice(1, slash);
      const network = name === 'ip4' ? parseIp4Network(address) : parseIp6Network(address);
      if (!network) throw permerror(`invalid address in ${JSON.stringify(term)}`);
      let prefix = network.length * 8;
      if (slash >= 0) {
        const length = /^\/(\d+)$/.exec(rest.slice(slash));
        if (!length) break;
        prefix = prefixLength(length[1], prefix, term);
      }
      return { kind: name, network, prefix };
    }
  }
  throw permerror(`invalid mechanism ${JSON.stringify(term)}`);
}

/** A CIDR length: decimal without leading zeros, at most `max` (§5.6). */
function prefixLength(digits: string | undefined, max: number, term: string): number {
  if (digits === undefined) return max;
  const n = Number(digits);
  if (!/^(0|[1-9]\d{0,2})$/.test(digits) || n > max) throw permerror(`invalid CIDR length in ${JSON.stringify(term)}`);
  return n;
}

function parseDomainSpec(text: string, term: string): MacroToken[] {
  if (text === '') throw permerror(`empty domain-spec in ${JSON.stringify(term)}`);
  const tokens = parseMacroString(text, 'domain');
  if (!hasValidDomainEnd(tokens)) throw permerror(`invalid domain-spec in ${JSON.stringify(term)}`);
  return tokens;
}
