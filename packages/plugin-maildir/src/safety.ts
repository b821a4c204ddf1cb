/**
 * Path safety: a local part or a domain becomes a path component, so it must not
 * be able to name anything but one plain directory below the root.
 */
import { domainToASCII } from 'node:url';

/** Longest user part, in UTF-8 octets (RFC 5321 §4.5.3.1.1 allows 64 for a whole local part). */
export const MAX_USER_OCTETS = 64;
/** Longest folder name taken from a sub-address tag. */
export const MAX_TAG_LENGTH = 64;

// RFC 5322 atext minus "/", plus ".": what an unquoted ASCII local part may contain, except the slash.
const ASCII_OK = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ASCII_OK[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ASCII_OK[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ASCII_OK[c] = 1;
for (const ch of "!#$%&'*+-=?^_`{|}~.") ASCII_OK[ch.charCodeAt(0)] = 1;

const LETTER_MARK_NUMBER = /^[\p{L}\p{M}\p{N}]$/u;

/**
 * Why `name` is not a safe single path component for a mailbox, or undefined if it is.
 *
 * Refused: empty; longer than 64 octets; a leading dot (".", "..", ".hidden", and
 * Maildir++ folder names); ".." anywhere or a trailing dot; "/", "\", NUL, controls,
 * spaces, quotes and every other character outside RFC 5322 atext; non-ASCII
 * characters other than letters, marks and digits; and any string that Unicode
 * compatibility normalization (NFKC) would change, so that look-alikes such as the
 * fullwidth solidus "／" (U+FF0F) or the one-dot leader "․" (U+2024) can never
 * become a "/" or "." in some other program's hands.
 */
export function unsafeComponent(name: string): string | undefined {
  if (name.length === 0) return 'empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_USER_OCTETS) return 'too long';
  if (name.startsWith('.')) return 'leading dot';
  if (name.endsWith('.')) return 'trailing dot';
  if (name.includes('..')) return 'consecutive dots';
  let ascii = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 128) {
      if (c === 0) return 'NUL character';
      if (c === 0x2f || c === 0x5c) return 'path separator';
      if (ASCII_OK[c] !== 1) return 'character not allowed in a mailbox name';
    } else ascii = false;
  }
  if (ascii) return undefined;
  if (name.normalize('NFKC') !== name) return 'Unicode compatibility or non-normalized characters';
  for (const ch of name) {
    if (ch.charCodeAt(0) < 128) continue;
    if (!LETTER_MARK_NUMBER.test(ch)) return 'non-ASCII character that is not a letter, mark or digit';
  }
  return undefined;
}

const TAG_RE = /^[A-Za-z0-9_-]+$/;

/** True if a sub-address tag may name a Maildir++ folder (`.tag`): ASCII letters, digits, "_" and "-" only. */
export function isSafeFolderTag(tag: string): boolean {
  return tag.length > 0 && tag.length <= MAX_TAG_LENGTH && TAG_RE.test(tag);
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The domain as a path component: lower case, no trailing dot, IDNA A-labels
 * (so "exämple.test" and its xn-- form are one mailbox tree). undefined if it is not
 * a plain domain name (address literals, "/", empty labels, over-long...).
 */
export function foldDomain(domain: string): string | undefined {
  let d = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (d.length === 0 || d.startsWith('[')) return undefined;
  d = d.toLowerCase();
  // Only letters, digits, "-" and "." in ASCII: domainToASCII parses like a URL host and
  // would quietly cut "é/x" at the slash.
  if (/[\x00-\x2c/:-@[-`{-\x7f]/.test(d)) return undefined;
  if (/[^\x00-\x7f]/.test(d)) {
    d = domainToASCII(d);
    if (!d) return undefined;
  }
  if (d.length > 253) return undefined;
  const labels = d.split('.');
  for (const label of labels) if (!LABEL.test(label)) return undefined;
  return d;
}
