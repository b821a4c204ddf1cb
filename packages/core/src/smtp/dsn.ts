/**
 * DSN parameters of MAIL and RCPT (RFC 3461 §4; RFC 6533 for the `utf-8` ORCPT
 * address type): RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT.
 *
 * Pure and total like the address parser: every function returns a value or a
 * `SmtpSyntaxError` and never throws. Decoded values are safe to write into a
 * delivery-status report: no control characters, ENVID and `rfc822` addresses
 * printable ASCII only (RFC 3461 §4.2, §4.4).
 */
import { decodeXtext, encodeXtext, hexVal, type SmtpSyntaxError } from './address.js';

/** RFC 3461 §4.1 NOTIFY keywords. `NEVER` only ever appears alone. */
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** The DSN parameters of MAIL: what to return in a failure DSN, and the sender's envelope id. */
export interface TransactionDsn {
  /** RET=: the whole message (`FULL`) or only its headers (`HDRS`) in a failure DSN. */
  readonly ret?: 'FULL' | 'HDRS';
  /** ENVID=, xtext-decoded: printable ASCII, at most 100 characters. */
  readonly envid?: string;
}

/** The original recipient of ORCPT=, decoded. */
export interface OriginalRecipient {
  /** Address type, lower-cased: `rfc822`, `utf-8` (RFC 6533), or another registered type. */
  readonly type: string;
  /** The address, decoded (xtext, or `\x{HEX}` for `utf-8`). */
  readonly address: string;
}

/** The DSN parameters of one RCPT. */
export interface RecipientDsn {
  /** NOTIFY=: `['NEVER']`, or some of SUCCESS, FAILURE, DELAY (upper case, no repeats). */
  readonly notify?: readonly DsnNotify[];
  /** ORCPT=: the address the sender originally gave for this recipient. */
  readonly orcpt?: OriginalRecipient;
}

export const MAX_ENVID_LENGTH = 100;
export const MAX_ORCPT_LENGTH = 500;

const bad = (text: string): SmtpSyntaxError => ({ code: 501, enhanced: '5.5.4', text });

/** RET=FULL | HDRS (case-insensitive). */
export function parseRet(value: string | true): 'FULL' | 'HDRS' | SmtpSyntaxError {
  const v = typeof value === 'string' ? value.toUpperCase() : '';
  return v === 'FULL' || v === 'HDRS' ? v : bad('Bad RET parameter: use RET=FULL or RET=HDRS');
}

/** ENVID=xtext: decoded, printable ASCII, at most 100 characters. */
export function parseEnvid(value: string | true): string | SmtpSyntaxError {
  const decoded = typeof value === 'string' ? decodeXtext(value) : null;
  if (decoded === null || decoded.length === 0 || decoded.length > MAX_ENVID_LENGTH || !isPrintableAscii(decoded)) {
    return bad(`Bad ENVID parameter: xtext of at most ${MAX_ENVID_LENGTH} printable ASCII characters`);
  }
  return decoded;
}

const NOTIFY_WORDS: readonly DsnNotify[] = ['SUCCESS', 'FAILURE', 'DELAY'];

/** NOTIFY=NEVER | comma list of SUCCESS, FAILURE, DELAY (case-insensitive; a repeated word is ignored). */
export function parseNotify(value: string | true): readonly DsnNotify[] | SmtpSyntaxError {
  const error = bad('Bad NOTIFY parameter: use NEVER, or a comma list of SUCCESS, FAILURE and DELAY');
  if (typeof value !== 'string') return error;
  const words = value.toUpperCase().split(',');
  if (words.length === 1 && words[0] === 'NEVER') return ['NEVER'];
  const out: DsnNotify[] = [];
  for (const word of words) {
    const known = NOTIFY_WORDS.find((w) => w === word);
    if (!known) return error;
    if (!out.includes(known)) out.push(known);
  }
  return out;
}

/**
 * ORCPT=addr-type;xtext. The address is xtext-decoded and must be printable ASCII,
 * except for the `utf-8` type (RFC 6533), whose `\x{HEX}` escapes (and raw UTF-8
 * under SMTPUTF8) give Unicode without control characters. At most 500 characters.
 */
export function parseOrcpt(value: string | true): OriginalRecipient | SmtpSyntaxError {
  const error = bad('Bad ORCPT parameter: use ORCPT=rfc822;address (xtext) or ORCPT=utf-8;address');
  if (typeof value !== 'string') return error;
  const semi = value.indexOf(';');
  if (semi <= 0) return error;
  const rawType = value.slice(0, semi);
  if (!isAtom(rawType)) return error;
  const type = rawType.toLowerCase();
  const encoded = value.slice(semi + 1);
  const address = type === 'utf-8' ? decodeUtf8AddrXtext(encoded) : decodeXtext(encoded);
  if (address === null || address.length === 0) return error;
  if (type === 'utf-8' ? hasControl(address) : !isPrintableAscii(address)) return error;
  if (type.length + 1 + address.length > MAX_ORCPT_LENGTH) {
    return bad(`Bad ORCPT parameter: longer than ${MAX_ORCPT_LENGTH} characters`);
  }
  return { type, address };
}

/**
 * Decodes RFC 6533 utf-8-addr-xtext / utf-8-addr-unitext: `\x{HEX}` is one Unicode
 * code point (1 to 6 hex digits, no surrogates); other characters stand for
 * themselves, except `+`, `=`, `\`, space and controls. `+HH` (plain xtext, which
 * some clients send for every address type) is read as one octet of UTF-8.
 * Returns null for anything malformed (including invalid UTF-8). Never throws.
 */
export function decodeUtf8AddrXtext(s: string): string | null {
  const bytes: number[] = [];
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) {
      if (s.charCodeAt(i + 1) !== 0x78 || s.charCodeAt(i + 2) !== 0x7b) return null;
      const close = s.indexOf('}', i + 3);
      const hex = close < 0 ? '' : s.slice(i + 3, close);
      if (!/^[0-9A-Fa-f]{1,6}$/.test(hex)) return null;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
      i = close;
    } else if (c === 0x2b) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h < 0 || l < 0) return null;
      bytes.push((h << 4) | l);
      i += 2;
    } else if (c <= 0x20 || c === 0x3d || c === 0x7f) {
      return null;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // Raw UTF-8 (utf-8-addr-unitext, allowed only under SMTPUTF8: the parameter parser checks that).
      const cp = s.codePointAt(i)!;
      if (cp >= 0xd800 && cp <= 0xdfff) return null; // lone surrogate
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  const buf = Buffer.from(bytes);
  const text = buf.toString('utf8');
  // Invalid UTF-8 (from +HH octets) decodes to U+FFFD and does not round-trip.
  return Buffer.from(text, 'utf8').equals(buf) ? text : null;
}

/**
 * Encodes text as RFC 6533 utf-8-addr-xtext (pure ASCII): printable ASCII other
 * than `+`, `=` and `\` as is, everything else as `\x{HEX}`.
 */
export function encodeUtf8AddrXtext(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x21 && cp <= 0x7e && cp !== 0x2b && cp !== 0x3d && cp !== 0x5c) out += ch;
    else out += `\\x{${cp.toString(16).toUpperCase()}}`;
  }
  return out;
}

/** The ORCPT parameter value for a next hop, pure ASCII: `rfc822;a+2Bb@c.example`, `utf-8;\x{E9}@c.example`. */
export function formatOrcpt(orcpt: OriginalRecipient): string {
  return `${orcpt.type};${orcpt.type === 'utf-8' ? encodeUtf8AddrXtext(orcpt.address) : encodeXtext(orcpt.address)}`;
}

/** The DSN parameters of a MAIL command, decoded (undefined when it has none), or the 501 for a bad one. */
export function transactionDsn(params: ReadonlyMap<string, string | true>): { dsn: TransactionDsn | undefined } | { error: SmtpSyntaxError } {
  const ret = params.get('RET');
  const envid = params.get('ENVID');
  if (ret === undefined && envid === undefined) return { dsn: undefined };
  const r = ret === undefined ? undefined : parseRet(ret);
  if (r !== undefined && typeof r !== 'string') return { error: r };
  const e = envid === undefined ? undefined : parseEnvid(envid);
  if (e !== undefined && typeof e !== 'string') return { error: e };
  return { dsn: Object.freeze({ ...(r ? { ret: r } : {}), ...(e !== undefined ? { envid: e } : {}) }) };
}

/** The DSN parameters of a RCPT command, decoded (undefined when it has none), or the 501 for a bad one. */
export function recipientDsn(params: ReadonlyMap<string, string | true>): { dsn: RecipientDsn | undefined } | { error: SmtpSyntaxError } {
  const notify = params.get('NOTIFY');
  const orcpt = params.get('ORCPT');
  if (notify === undefined && orcpt === undefined) return { dsn: undefined };
  const n = notify === undefined ? undefined : parseNotify(notify);
  if (n !== undefined && !Array.isArray(n)) return { error: n as SmtpSyntaxError };
  const o = orcpt === undefined ? undefined : parseOrcpt(orcpt);
  if (o !== undefined && !('address' in o)) return { error: o };
  return { dsn: Object.freeze({ ...(n ? { notify: Object.freeze([...n]) } : {}), ...(o ? { orcpt: Object.freeze(o) } : {}) }) };
}

// ---------------------------------------------------------------------------

function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** C0 and C1 controls and DEL: never written into a report. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** RFC 5322 atom (atext only), what addr-type is; without `=`, which no parameter value may hold. */
function isAtom(s: string): boolean {
  return /^[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]+$/.test(s);
}
