/**
 * Text from the message, DNS or configuration, made safe for the header fields and
 * reply lines this plugin writes. There are two different jobs, and one function each:
 *
 * - `headerText`: words for people (a rule's description in X-Spam-Report, a list's TXT
 *   record in a reply, a comment). One line of printable ASCII: every run of anything
 *   else (CR, LF, tabs, controls, non-ASCII) becomes one space, runs of spaces are one
 *   space, the ends are trimmed, and a text cut at `max` ends in "...".
 * - `headerValue`: a value a program reads back (an address, a domain, a selector, a
 *   hostname). Every character outside printable ASCII becomes "?", one for one, and
 *   nothing is trimmed or merged, so a hostile value can never come out as a different,
 *   valid one ("bank.example\0" is written "bank.example?", not bank.example). Written as
 *   it is when it fits the field's grammar (RFC 2045 token for Authentication-Results,
 *   RFC 5322 dot-atom for Received-SPF), else as a quoted-string.
 *
 * `printableAscii` is headerValue's reduction alone, for text that ends up in a reply
 * line; `headerComment` is a comment, parentheses and backslashes quoted.
 */

/** Longest value written (before quoting): a header line stays far below 998 octets. */
export const MAX_VALUE_LENGTH = 200;

/** RFC 2045 token, plus "@" for RFC 8601's `[local-part "@"] domain-name` property values. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~@]+$/;
/** RFC 5322 §3.2.3 dot-atom-text. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

/** The grammar a value is written in when it can be: `token` (RFC 2045) or `dot-atom` (RFC 5322). */
export type ValueGrammar = 'token' | 'dot-atom';

/** Words for people: one line of printable ASCII, single spaces, trimmed, at most `max` characters. */
export function headerText(text: string, max: number): string {
  const line = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/** Each character outside printable ASCII as "?", one for one; at most `max` characters. */
export function printableAscii(text: string, max: number): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

/** A value as `grammar` allows it bare, else as a quoted-string ("" and \ escaped). */
export function headerValue(text: string, grammar: ValueGrammar): string {
  const value = printableAscii(text, MAX_VALUE_LENGTH);
  if ((grammar === 'token' ? TOKEN : DOT_ATOM).test(value)) return value;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** An RFC 5322 comment of headerText(text, max): "(", ")" and "\" are quoted-pairs inside it. */
export function headerComment(text: string, max: number): string {
  return `(${headerText(text, max).replace(/[()\\]/g, (c) => `\\${c}`)})`;
}
