/**
 * MAIL FROM / RCPT TO argument parsing (RFC 5321 §4.1.2, §4.1.1.2-3, §4.5.3.1;
 * RFC 6531 for SMTPUTF8).
 *
 * Pure, allocation-light, regex-free (no backtracking risk) and total: every
 * exported function returns errors as values and never throws.
 *
 * `args` is what follows the verb, e.g. `FROM:<a@b.example> SIZE=10`. It must be
 * the command line decoded as UTF-8 (invalid UTF-8 decodes to U+FFFD, which is
 * rejected here).
 */
import { isIPv6 } from 'node:net';

export interface Address {
  /** Local part as the user meant it: quotes removed, quoted-pair escapes resolved. */
  local: string;
  /** Domain as written (no brackets stripping for literals: keep "[127.0.0.1]"), without a trailing dot. Not case-folded. */
  domain: string;
  /** True for address literals like [192.0.2.1] or [IPv6:::1]. */
  literal: boolean;
  /** Canonical mailbox text: local part re-quoted only if needed (RFC 5321 Dot-string vs Quoted-string), '@', domain. */
  address: string;
}

/** An SMTP reply describing why a command argument was refused. */
export interface SmtpSyntaxError {
  code: number;
  enhanced: string;
  text: string;
}

/** ESMTP parameters: keys upper-cased, values raw (not xtext-decoded); `true` for a keyword without `=value`. */
export type Params = Map<string, string | true>;

export interface AddressParseOptions {
  /**
   * parseMailFrom: the server advertises SMTPUTF8 (the MAIL command itself must
   * carry the SMTPUTF8 parameter for a UTF-8 path to be accepted).
   * parseRcptTo: the transaction's MAIL carried SMTPUTF8, so UTF-8 is allowed.
   */
  smtputf8: boolean;
}

export type MailFromResult = { address: Address | null; params: Params } | { error: SmtpSyntaxError };
export type RcptToResult = { address: Address; params: Params; postmaster: boolean } | { error: SmtpSyntaxError };

/** RFC 5321 §4.5.3.1 size limits, in octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
export const MAX_DOMAIN_OCTETS = 255;
export const MAX_PATH_OCTETS = 256;

// ---------------------------------------------------------------------------
// Character classes (ASCII only; non-ASCII is handled by nonAsciiWidth()).

const ATEXT = 1; // RFC 5322 atext
const LETDIG = 2; // ALPHA / DIGIT
const DIGIT = 4;

const CLASS = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = ATEXT | LETDIG | DIGIT;
for (let c = 0x41; c <= 0x5a; c++) CLASS[c] = ATEXT | LETDIG;
for (let c = 0x61; c <= 0x7a; c++) CLASS[c] = ATEXT | LETDIG;
for (const ch of "!#$%&'*+-/=?^_`{|}~") CLASS[ch.charCodeAt(0)] = ATEXT;

function cls(c: number): number {
  return c < 128 ? (CLASS[c] as number) : 0;
}

/** Unicode white space and invisible formatting characters: never allowed outside quotes. */
function isUnicodeSpaceOrInvisible(c: number): boolean {
  return (
    c === 0x00a0 ||
    c === 0x00ad ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200f) ||
    (c >= 0x2028 && c <= 0x202f) ||
    (c >= 0x205f && c <= 0x206f) ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * Width in UTF-16 code units (1 or 2) of the valid non-ASCII character at s[i],
 * or 0 if it is not acceptable: C1 controls, U+FFFD (what invalid UTF-8 decodes
 * to), U+FFFE/U+FFFF, lone surrogates; with `strict` (outside quoted strings)
 * also Unicode spaces and invisible characters.
 * Precondition: s.charCodeAt(i) >= 0x80.
 */
function nonAsciiWidth(s: string, i: number, strict: boolean): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) {
    const d = s.charCodeAt(i + 1); // NaN past the end
    return d >= 0xdc00 && d <= 0xdfff ? 2 : 0;
  }
  if (c >= 0xdc00 && c <= 0xdfff) return 0;
  if (c <= 0x9f || c === 0xfffd || c === 0xfffe || c === 0xffff) return 0;
  if (strict && isUnicodeSpaceOrInvisible(c)) return 0;
  return 1;
}

function asciiEqualsCI(s: string, start: number, end: number, lowerWord: string): boolean {
  if (end - start !== lowerWord.length) return false;
  for (let k = 0; k < lowerWord.length; k++) {
    let c = s.charCodeAt(start + k);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerWord.charCodeAt(k)) return false;
  }
  return true;
}

function octets(s: string, start: number, end: number, nonAscii: boolean): number {
  return nonAscii ? Buffer.byteLength(s.slice(start, end), 'utf8') : end - start;
}

// ---------------------------------------------------------------------------
// Scanners. Each takes the cursor state object and returns false / null on a
// syntax error, leaving `p.i` after the scanned production on success.

interface Cursor {
  s: string;
  i: number;
  nonAscii: boolean;
}

/** Dot-string = Atom *("." Atom), Atom = 1*atext (RFC 6531: atext =/ UTF8-non-ascii). */
function scanDotString(p: Cursor): boolean {
  const s = p.s;
  const n = s.length;
  let i = p.i;
  let atomLen = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (cls(c) & ATEXT) {
        atomLen++;
        i++;
        continue;
      }
      if (c === 0x2e) {
        if (atomLen === 0) return false; // leading or doubled dot
        atomLen = 0;
        i++;
        continue;
      }
      break;
    }
    const w = nonAsciiWidth(s, i, true);
    if (w === 0) return false;
    p.nonAscii = true;
    atomLen++;
    i += w;
  }
  if (atomLen === 0) return false; // empty or trailing dot
  p.i = i;
  return true;
}

/** Quoted-string (p.i at the opening quote); returns the unquoted content. */
function scanQuotedString(p: Cursor): string | null {
  const s = p.s;
  const n = s.length;
  let i = p.i + 1;
  let start = i;
  let out = '';
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      out += s.slice(start, i);
      p.i = i + 1;
      return out;
    }
    if (c === 0x5c) {
      // quoted-pairSMTP = %d92 %d32-126
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0x20 && d <= 0x7e)) return null;
      out += s.slice(start, i) + s.charAt(i + 1);
      i += 2;
      start = i;
      continue;
    }
    if (c >= 0x20 && c <= 0x7e) {
      i++;
      continue;
    }
    if (c < 0x80) return null; // control character
    const w = nonAsciiWidth(s, i, false);
    if (w === 0) return null;
    p.nonAscii = true;
    i += w;
  }
  return null; // unterminated
}

/**
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * (RFC 6531: or a U-label). Returns the domain text without a trailing dot
 * (one trailing dot is tolerated only if `allowTrailingDot`).
 */
function scanDomain(p: Cursor, allowTrailingDot: boolean): string | null {
  const s = p.s;
  const n = s.length;
  const start = p.i;
  let i = start;
  let labelLen = 0;
  let lastHyphen = false;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (cls(c) & LETDIG) {
        labelLen++;
        lastHyphen = false;
        i++;
      } else if (c === 0x2d) {
        if (labelLen === 0) return null; // leading hyphen
        labelLen++;
        lastHyphen = true;
        i++;
      } else if (c === 0x2e) {
        if (labelLen === 0 || lastHyphen) return null; // empty label / trailing hyphen
        labelLen = 0;
        i++;
        continue;
      } else {
        break;
      }
    } else {
      const w = nonAsciiWidth(s, i, true);
      if (w === 0) return null;
      p.nonAscii = true;
      labelLen++;
      lastHyphen = false;
      i += w;
    }
    if (labelLen > 63) return null;
  }
  if (lastHyphen) return null;
  let end = i;
  if (labelLen === 0) {
    if (i === start || !allowTrailingDot) return null; // empty domain or trailing dot
    end = i - 1; // strip the single trailing dot
  }
  p.i = i;
  return s.slice(start, end);
}

/** Snum "." Snum "." Snum "." Snum with each Snum 1-3 digits in 0..255. */
function isIPv4Literal(s: string, start: number, end: number): boolean {
  let parts = 0;
  let i = start;
  while (parts < 4) {
    let v = 0;
    let digits = 0;
    while (i < end && digits < 4) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      digits++;
      i++;
    }
    if (digits === 0 || digits > 3 || v > 255) return false;
    parts++;
    if (parts < 4) {
      if (s.charCodeAt(i) !== 0x2e || i >= end) return false;
      i++;
    }
  }
  return i === end;
}

/** address-literal (p.i at '['): IPv4 or IPv6 only; general literals are refused. Returns the text with brackets. */
function scanAddressLiteral(p: Cursor): string | null {
  const s = p.s;
  const open = p.i;
  const close = s.indexOf(']', open + 1);
  if (close < 0) return null;
  const a = open + 1;
  let ok: boolean;
  if (close - a > 5 && asciiEqualsCI(s, a, a + 5, 'ipv6:')) {
    const v6 = s.slice(a + 5, close);
    // node's isIPv6 accepts zone ids ("fe80::1%eth0"): not valid in an address literal.
    ok = v6.indexOf('%') < 0 && isIPv6(v6);
  } else {
    ok = isIPv4Literal(s, a, close);
  }
  if (!ok) return null;
  p.i = close + 1;
  return s.slice(open, close + 1);
}

// ---------------------------------------------------------------------------
// Path

interface PathOk {
  ok: true;
  /** Index after the closing '>'. */
  end: number;
  address: Address | null;
  postmaster: boolean;
  nonAscii: boolean;
}
interface PathErr {
  ok: false;
  text: string;
}

const SYNTAX: PathErr = { ok: false, text: '' };

/** Parses a Reverse-path / Forward-path starting at the '<' at `start`. */
function parsePath(s: string, start: number, rcpt: boolean): PathOk | PathErr {
  const p: Cursor = { s, i: start + 1, nonAscii: false };
  const n = s.length;
  let c = s.charCodeAt(p.i);

  if (c === 0x3e) {
    // Null reverse-path "<>"
    if (rcpt) return SYNTAX;
    return { ok: true, end: p.i + 1, address: null, postmaster: false, nonAscii: false };
  }

  // Optional, ignored source route: A-d-l ":"  (A-d-l = At-domain *( "," At-domain ))
  let route = false;
  if (c === 0x40) {
    route = true;
    for (;;) {
      p.i++; // skip '@'
      if (scanDomain(p, false) === null) return SYNTAX;
      c = s.charCodeAt(p.i);
      if (c === 0x2c) {
        p.i++;
        if (s.charCodeAt(p.i) !== 0x40) return SYNTAX;
        continue;
      }
      if (c === 0x3a) {
        p.i++;
        break;
      }
      return SYNTAX;
    }
  }

  // Local-part
  const localStart = p.i;
  let local: string;
  let quoted = false;
  if (s.charCodeAt(p.i) === 0x22) {
    const q = scanQuotedString(p);
    if (q === null) return SYNTAX;
    local = q;
    quoted = true;
  } else {
    if (!scanDotString(p)) return SYNTAX;
    local = s.slice(localStart, p.i);
  }
  const localEnd = p.i;

  c = s.charCodeAt(p.i);
  if (c === 0x3e) {
    // RFC 5321 §4.1.1.3: "RCPT TO:<Postmaster>" without a domain (case-insensitive).
    if (rcpt && !quoted && !route && asciiEqualsCI(s, localStart, localEnd, 'postmaster')) {
      return {
        ok: true,
        end: p.i + 1,
        address: { local: 'postmaster', domain: '', literal: false, address: 'postmaster' },
        postmaster: true,
        nonAscii: false,
      };
    }
    return SYNTAX;
  }
  if (c !== 0x40) return SYNTAX;
  p.i++;

  // Domain / address-literal
  const domainStart = p.i;
  let domain: string | null;
  let literal = false;
  if (s.charCodeAt(p.i) === 0x5b) {
    domain = scanAddressLiteral(p);
    literal = true;
  } else {
    domain = scanDomain(p, true);
  }
  if (domain === null) return SYNTAX;
  if (p.i >= n || s.charCodeAt(p.i) !== 0x3e) return SYNTAX;
  const end = p.i + 1;

  // RFC 5321 §4.5.3.1 limits (octets; measured on the text as written).
  if (octets(s, localStart, localEnd, p.nonAscii) > MAX_LOCAL_PART_OCTETS) {
    return { ok: false, text: 'Local part too long' };
  }
  if (octets(s, domainStart, domainStart + domain.length, p.nonAscii) > MAX_DOMAIN_OCTETS) {
    return { ok: false, text: 'Domain too long' };
  }
  if (octets(s, start, end, p.nonAscii) > MAX_PATH_OCTETS) {
    return { ok: false, text: 'Path too long' };
  }

  return {
    ok: true,
    end,
    address: { local, domain, literal, address: formatAddress(local, domain) },
    postmaster: asciiEqualsCI(local, 0, local.length, 'postmaster'),
    nonAscii: p.nonAscii,
  };
}

// ---------------------------------------------------------------------------
// ESMTP parameters

/** Parameters that may not be repeated at all (the DSN ones, RFC 3461 §4). */
const ONCE_ONLY = new Set(['RET', 'ENVID', 'NOTIFY', 'ORCPT']);

interface ParamsOk {
  ok: true;
  params: Params;
  nonAscii: boolean;
}

/**
 * esmtp-param *(SP esmtp-param) starting at `i` (which must be the end of the
 * string or a space). Runs of spaces are tolerated.
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 * esmtp-value   = 1*(%d33-60 / %d62-126)   (RFC 6531 §3.3 adds UTF8-non-ascii;
 *                 accepted here, flagged via `nonAscii` for the caller).
 */
function parseParams(s: string, i: number): ParamsOk | SmtpSyntaxError {
  const params: Params = new Map();
  const n = s.length;
  let nonAscii = false;
  while (i < n) {
    if (s.charCodeAt(i) === 0x20) {
      i++;
      continue;
    }
    const kStart = i;
    if (!(cls(s.charCodeAt(i)) & LETDIG)) return badParam();
    i++;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (cls(c) & LETDIG || c === 0x2d) i++;
      else break;
    }
    const key = s.slice(kStart, i).toUpperCase();
    let value: string | true = true;
    if (i < n && s.charCodeAt(i) === 0x3d) {
      i++;
      const vStart = i;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c === 0x20) break;
        if (c > 0x20 && c < 0x7f && c !== 0x3d) {
          i++;
          continue;
        }
        if (c < 0x80) return badParam();
        const w = nonAsciiWidth(s, i, true);
        if (w === 0) return badParam();
        nonAscii = true;
        i += w;
      }
      if (i === vStart) return badParam();
      value = s.slice(vStart, i);
    } else if (i < n && s.charCodeAt(i) !== 0x20) {
      return badParam();
    }
    // An exact repeat is harmless and real clients send one: Python's send_message()
    // adds "SMTPUTF8 BODY=8BITMIME" after a caller's own mail_options=['SMTPUTF8'].
    // Only a repeat with a different value is ambiguous.
    const previous = params.get(key);
    // RFC 3461 §4: each DSN parameter at most once, even with the same value.
    if (previous !== undefined && ONCE_ONLY.has(key)) return { code: 501, enhanced: '5.5.4', text: `Duplicate parameter ${key}` };
    if (previous !== undefined && previous !== value) return { code: 501, enhanced: '5.5.4', text: `Conflicting values for parameter ${key}` };
    params.set(key, value);
  }
  return { ok: true, params, nonAscii };
}

function badParam(): SmtpSyntaxError {
  return { code: 501, enhanced: '5.5.4', text: 'Bad parameter syntax' };
}

// ---------------------------------------------------------------------------
// Public API

function senderError(text = 'Bad sender address syntax'): { error: SmtpSyntaxError } {
  return { error: { code: 501, enhanced: '5.1.7', text } };
}
function recipientError(text = 'Bad recipient address syntax'): { error: SmtpSyntaxError } {
  return { error: { code: 501, enhanced: '5.1.3', text } };
}
function utf8Error(): { error: SmtpSyntaxError } {
  return { error: { code: 553, enhanced: '5.6.7', text: 'Non-ASCII address requires SMTPUTF8' } };
}
function internalError(): { error: SmtpSyntaxError } {
  // Unreachable by design; the guard keeps the "never throws" promise.
  return { error: { code: 501, enhanced: '5.5.4', text: 'Internal parser error' } };
}

function startsWithCI(s: string, upperWord: string): boolean {
  if (s.length < upperWord.length) return false;
  for (let k = 0; k < upperWord.length; k++) {
    let c = s.charCodeAt(k);
    if (c >= 0x61 && c <= 0x7a) c &= ~0x20;
    if (c !== upperWord.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Parses the arguments of MAIL: `FROM:<reverse-path> [params]`.
 *
 * Replies: 501 5.5.4 (no `FROM:` / parameter syntax / duplicate parameter /
 * `SMTPUTF8=value`), 501 5.1.7 (path syntax or length), 553 5.6.7 (non-ASCII
 * path without the SMTPUTF8 parameter), 555 5.5.4 (SMTPUTF8 parameter while
 * `opts.smtputf8` — the server advertising it — is false).
 * A `null` address is the null reverse-path `<>`.
 */
export function parseMailFrom(args: string, opts: AddressParseOptions): MailFromResult {
  try {
    if (typeof args !== 'string' || !startsWithCI(args, 'FROM:')) {
      return { error: { code: 501, enhanced: '5.5.4', text: 'Syntax: MAIL FROM:<address>' } };
    }
    let i = 5;
    if (args.charCodeAt(i) === 0x20) i++; // "MAIL FROM: <a@b>" is common; one space only
    if (args.charCodeAt(i) !== 0x3c) return senderError();
    const path = parsePath(args, i, false);
    if (!path.ok) return senderError(path.text || undefined);
    if (path.end < args.length && args.charCodeAt(path.end) !== 0x20) return senderError();
    const pr = parseParams(args, path.end);
    if (!('ok' in pr)) return { error: pr };

    const smtputf8 = pr.params.get('SMTPUTF8');
    if (smtputf8 !== undefined) {
      if (smtputf8 !== true) return { error: { code: 501, enhanced: '5.5.4', text: 'SMTPUTF8 takes no value' } };
      if (!opts.smtputf8) return { error: { code: 555, enhanced: '5.5.4', text: 'SMTPUTF8 not supported' } };
    } else {
      if (path.nonAscii) return utf8Error();
      if (pr.nonAscii) return badParam8();
    }
    return { address: path.address, params: pr.params };
  } catch {
    return internalError();
  }
}

function badParam8(): { error: SmtpSyntaxError } {
  return { error: { code: 501, enhanced: '5.5.4', text: 'Non-ASCII parameter value requires SMTPUTF8' } };
}

/**
 * Parses the arguments of RCPT: `TO:<forward-path> [params]`.
 *
 * Replies: 501 5.5.4 (no `TO:` / parameter syntax / duplicate), 501 5.1.3
 * (path syntax or length, null path), 553 5.6.7 (non-ASCII path while
 * `opts.smtputf8` is false). `postmaster` is true for `<postmaster>` (returned as
 * `{local:'postmaster', domain:''}`) and for `postmaster@<any domain>`
 * (case-insensitive).
 */
export function parseRcptTo(args: string, opts: AddressParseOptions): RcptToResult {
  try {
    if (typeof args !== 'string' || !startsWithCI(args, 'TO:')) {
      return { error: { code: 501, enhanced: '5.5.4', text: 'Syntax: RCPT TO:<address>' } };
    }
    let i = 3;
    if (args.charCodeAt(i) === 0x20) i++;
    if (args.charCodeAt(i) !== 0x3c) return recipientError();
    const path = parsePath(args, i, true);
    if (!path.ok) return recipientError(path.text || undefined);
    if (path.address === null) return recipientError();
    if (path.end < args.length && args.charCodeAt(path.end) !== 0x20) return recipientError();
    const pr = parseParams(args, path.end);
    if (!('ok' in pr)) return { error: pr };
    if (!opts.smtputf8) {
      if (path.nonAscii) return utf8Error();
      if (pr.nonAscii) return badParam8();
    }
    return { address: path.address, params: pr.params, postmaster: path.postmaster };
  } catch {
    return internalError();
  }
}

/** True if `local` can be written unquoted (RFC 5321 Dot-string, RFC 6531 UTF-8 atext). */
export function isDotString(local: string): boolean {
  const p: Cursor = { s: local, i: 0, nonAscii: false };
  return scanDotString(p) && p.i === local.length;
}

/**
 * Canonical mailbox text: the local part as a Dot-string when possible, else as
 * a Quoted-string (only `"` and `\` escaped), then `@domain`. With an empty
 * domain (the `<postmaster>` form) only the local part is returned. Never throws;
 * it does not validate (characters that cannot appear in a mailbox at all, e.g.
 * control characters, are emitted inside the quotes as-is).
 */
export function formatAddress(local: string, domain: string): string {
  let l: string;
  if (isDotString(local)) {
    l = local;
  } else {
    l = '"';
    let start = 0;
    for (let k = 0; k < local.length; k++) {
      const c = local.charCodeAt(k);
      if (c === 0x22 || c === 0x5c) {
        l += local.slice(start, k) + '\\';
        start = k;
      }
    }
    l += local.slice(start) + '"';
  }
  return domain === '' ? l : `${l}@${domain}`;
}

/** Value of one hex digit (either case), or -1. */
export function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes RFC 3461 xtext (ORCPT, ENVID, AUTH=): `+HH` is an octet, other
 * characters must be printable ASCII other than `+` and `=`. Octets are read as
 * UTF-8. Returns null for malformed xtext (never throws).
 */
export function decodeXtext(s: string): string | null {
  const n = s.length;
  if (s.indexOf('+') < 0) {
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x21 || c > 0x7e || c === 0x3d) return null;
    }
    return s;
  }
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h < 0 || l < 0) return null;
      out[o++] = (h << 4) | l;
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x3d) {
      return null;
    } else {
      out[o++] = c;
    }
  }
  return out.toString('utf8', 0, o);
}

/** Encodes a string (as UTF-8 octets) to RFC 3461 xtext, `+HH` in upper case. */
export function encodeXtext(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d) out += String.fromCharCode(c);
    else out += '+' + (c < 16 ? '0' : '') + c.toString(16).toUpperCase();
  }
  return out;
}
