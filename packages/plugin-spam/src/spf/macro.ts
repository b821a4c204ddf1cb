/**
 * SPF macros (RFC 7208 §7): parsing a macro-string into literal and macro tokens, and
 * expanding the tokens. Parsing happens when the record is parsed, so a bad macro is a
 * permerror wherever it is in the record (§4.6); expansion is pure and synchronous, the
 * evaluator works out %{p} beforehand when a string uses it.
 */
import { permerror } from './errors.js';

export type MacroLetter = 's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'v' | 'h' | 'c' | 'r' | 't';

export type MacroToken =
  | { kind: 'literal'; text: string }
  | {
      kind: 'macro';
      letter: MacroLetter;
      /** upper-case letter: URL-escape the result (§7.3) */
      escape: boolean;
      /** keep this many right-hand parts (undefined: all) */
      keep: number | undefined;
      reverse: boolean;
      /** characters the value is split on (default ".") */
      delimiters: string;
    };

/**
 * Where a macro-string appears decides what it may hold: a domain-spec has no spaces
 * and no c/r/t (§7.2); an unknown modifier's value is only checked for syntax; the exp
 * TXT text may have spaces and every letter.
 */
export type MacroContext = 'domain' | 'modifier' | 'explanation';

/** The values the letters expand to (§7.3). */
export interface MacroValues {
  /** s: the sender, local-part@domain */
  s: string;
  /** l: local-part of the sender */
  l: string;
  /** o: domain of the sender */
  o: string;
  /** d: the domain being checked now */
  d: string;
  /** i: dotted client address (nibbles for IPv6) */
  i: string;
  /** p: validated client host name, or "unknown" (worked out by the evaluator) */
  p: string;
  /** v: "in-addr" or "ip6" */
  v: string;
  /** h: HELO/EHLO domain */
  h: string;
  /** c: readable client address (explanations only) */
  c: string;
  /** r: the receiving host (explanations only) */
  r: string;
  /** t: seconds since the epoch (explanations only) */
  t: string;
}

const LETTERS = new Set<string>(['s', 'l', 'o', 'd', 'i', 'p', 'v', 'h', 'c', 'r', 't']);
const EXPLANATION_ONLY = new Set<string>(['c', 'r', 't']);
const DELIMITERS = '.-+,/_=';

/**
 * An expansion longer than this is refused (permerror in a term, no explanation in exp):
 * a record of many %{s} with a long sender must not build megabytes of text.
 */
export const MAX_EXPANSION_LENGTH = 8192;

/** Parse `text` as a macro-string; throws a permerror SpfError on bad syntax. */
export function parseMacroString(text: string, context: MacroContext): MacroToken[] {
  const tokens: MacroToken[] = [];
  let literal = '';
  const minLiteral = context === 'explanation' ? 0x20 : 0x21;
  for (let i = 0; i < text.length; ) {
    const ch = text.charCodeAt(i);
    if (ch !== 0x25 /* % */) {
      if (ch < minLiteral || ch > 0x7e) throw permerror(`invalid character ${JSON.stringify(text[i])} in ${JSON.stringify(text)}`);
      literal += text[i];
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '%' || next === '_' || next === '-') {
      literal += next === '%' ? '%' : next === '_' ? ' ' : '%20';
      i += 2;
      continue;
    }
    if (next !== '{') throw permerror(`invalid macro at ${JSON.stringify(text.slice(i, i + 8))} in ${JSON.stringify(text)}`);
    const end = text.indexOf('}', i + 2);
    if (end < 0) throw permerror(`unterminated macro in ${JSON.stringify(text)}`);
    const m = /^([a-zA-Z])(\d*)([rR]?)([.\-+,/_=]*)$/.exec(text.slice(i + 2, end));
    const letter = m?.[1]?.toLowerCase();
    if (!m || letter === undefined || !LETTERS.has(letter)) {
      throw permerror(`invalid macro ${JSON.stringify(text.slice(i, end + 1))}`);
    }
    if (context === 'domain' && EXPLANATION_ONLY.has(letter)) {
      throw permerror(`macro %{${letter}} is allowed only in explanations`);
    }
    let keep: number | undefined;
    if (m[2]) {
      keep = Number(m[2]);
      // §7.3: the digit transformer MUST be nonzero
      if (keep === 0) throw permerror(`zero digit transformer in ${JSON.stringify(text.slice(i, end + 1))}`);
    }
    if (literal) tokens.push({ kind: 'literal', text: literal });
    literal = '';
    tokens.push({
      kind: 'macro',
      letter: letter as MacroLetter,
      escape: m[1] !== letter,
      keep,
      reverse: m[3] !== '',
      delimiters: m[4] || '.',
    });
    i = end + 1;
  }
  if (literal) tokens.push({ kind: 'literal', text: literal });
  return tokens;
}

/** Does the string use %{p} (which needs DNS lookups to expand)? */
export function usesPtrMacro(tokens: readonly MacroToken[]): boolean {
  return tokens.some((t) => t.kind === 'macro' && t.letter === 'p');
}

/** Expand parsed tokens; throws a permerror SpfError when the result would be too long. */
export function expandMacros(tokens: readonly MacroToken[], values: MacroValues): string {
  let out = '';
  for (const token of tokens) {
    out += token.kind === 'literal' ? token.text : expandOne(token, values);
    if (out.length > MAX_EXPANSION_LENGTH) throw permerror(`macro expansion longer than ${MAX_EXPANSION_LENGTH} characters`);
  }
  return out;
}

function expandOne(token: Extract<MacroToken, { kind: 'macro' }>, values: MacroValues): string {
  const value = values[token.letter];
  let parts = splitOn(value, token.delimiters);
  if (token.reverse) parts.reverse();
  if (token.keep !== undefined && token.keep < parts.length) parts = parts.slice(parts.length - token.keep);
  const joined = parts.join('.');
  return token.escape ? urlEscape(joined) : joined;
}

function splitOn(value: string, delimiters: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (const ch of value) {
    if (delimiters.includes(ch) && DELIMITERS.includes(ch)) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/** §7.3: upper-case macros are URL-escaped: every octet outside RFC 3986 "unreserved" becomes %XX. */
export function urlEscape(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
