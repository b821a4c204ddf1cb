/**
 * RFC 5322 header section helpers: find the end of the header section, parse it
 * (tolerantly) with unfolding, and format a header field with folding.
 *
 * Only CRLF is a line ending here (the DATA decoder guarantees CRLF bodies in
 * 'normalize' mode and refuses other line endings in 'reject' mode).
 */

export interface Header {
  /** Field name as written (trailing white space before the colon removed). Not case-folded. */
  name: string;
  /** Unfolded value (CRLF before folding white space removed), leading and trailing white space trimmed, decoded as UTF-8. */
  value: string;
  /** The raw field bytes, including folding and the final CRLF (a slice of the input, no copy). */
  raw: Buffer | string;
}

export interface HeaderBlock {
  headers: Header[];
  /** Bytes of the header section including the blank line, or the whole buffer if no blank line was found. */
  headerLength: number;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const CRLF = Buffer.from('\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Index just after the blank line that ends the header section (after the
 * `\r\n\r\n`), 2 if the buffer starts with an empty line (no headers), or -1 if
 * the section is not complete in `buf`.
 */
export function findHeaderEnd(buf: Buffer): number {
  if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) return 2;
  const i = buf.indexOf(CRLFCRLF);
  return i < 0 ? -1 : i + 4;
}

function isWsp(c: number | undefined): boolean {
  return c === SP || c === HTAB;
}

/** Field name: printable ASCII except ':' (RFC 5322 ftext), non-empty. */
function validName(buf: Buffer, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function unfoldValue(buf: Buffer, start: number, end: number): string {
  let s = buf.toString('utf8', start, end);
  if (s.indexOf('\r\n') >= 0) s = s.split('\r\n').join('');
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HTAB)) a++;
  while (b > a) {
    const c = s.charCodeAt(b - 1);
    if (c === SP || c === HTAB || c === CR || c === LF) b--;
    else break;
  }
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Parses the header section at the start of `buf`. Tolerant: lines that are
 * neither a `name: value` field (name = printable ASCII, optional white space
 * before the colon) nor a continuation of one are skipped, together with their
 * own continuation lines; continuation lines before the first field are skipped.
 * Never throws.
 */
export function parseHeaderBlock(buf: Buffer): HeaderBlock {
  const headers: Header[] = [];
  const end = findHeaderEnd(buf);
  const limit = end < 0 ? buf.length : end;
  let pos = 0;
  // Current field being collected.
  let cStart = -1;
  let cValue = 0;
  let cEnd = 0;
  let cName = '';

  const flush = (): void => {
    if (cStart < 0) return;
    headers.push({ name: cName, value: unfoldValue(buf, cValue, cEnd), raw: buf.subarray(cStart, cEnd) });
    cStart = -1;
  };

  while (pos < limit) {
    const eol = buf.indexOf(CRLF, pos);
    let contentEnd: number;
    let lineEnd: number;
    if (eol < 0 || eol + 2 > limit) {
      contentEnd = limit;
      lineEnd = limit;
    } else {
      contentEnd = eol;
      lineEnd = eol + 2;
    }
    if (contentEnd === pos) break; // the blank line
    const first = buf[pos];
    if (isWsp(first)) {
      if (cStart >= 0) cEnd = lineEnd; // continuation (or skipped with its garbage field)
    } else {
      flush();
      // Search this line only: a colon-less garbage line must not scan the rest of the block (quadratic).
      const colon = buf.subarray(pos, contentEnd).indexOf(COLON);
      if (colon >= 0) {
        const at = pos + colon;
        let nameEnd = at;
        while (nameEnd > pos && isWsp(buf[nameEnd - 1])) nameEnd--;
        if (validName(buf, pos, nameEnd)) {
          cStart = pos;
          cName = buf.toString('latin1', pos, nameEnd);
          cValue = at + 1;
          cEnd = lineEnd;
        }
      }
    }
    pos = lineEnd;
  }
  flush();
  return { headers, headerLength: limit };
}

const MAX_LINE = 78;
/** RFC 5322 §2.1.1: the longest line, without its CRLF. */
const MAX_LINE_OCTETS = 998;

/**
 * Formats one header field, folded at white space so that lines stay within 78
 * characters where possible (a word longer than that stays on one line), ending
 * with CRLF. Unfolding the result gives back `name: value` exactly.
 *
 * Unlike the protocol-path functions this one is for plugin authors and THROWS a
 * TypeError for an invalid name (empty, or not printable ASCII without ':'), a
 * value containing CR, LF or NUL — this prevents header injection — or a value with
 * a run of over 998 octets that no fold can break.
 */
export function formatHeader(name: string, value: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('Invalid header name');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === COLON) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  }
  if (typeof value !== 'string') throw new TypeError('Header value must be a string');
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === CR || c === LF || c === 0) {
      throw new TypeError(`Header ${name}: value must not contain CR, LF or NUL`);
    }
  }
  const line = value === '' ? `${name}:` : `${name}: ${value}`;
  const n = line.length;
  if (n <= MAX_LINE) return line + '\r\n';

  // A fold point p is the first white space of a run such that the current
  // line keeps some value text before p and non-white text follows the run
  // (RFC 5322 §3.2.2: no line may consist of white space only).
  const isFoldPoint = (p: number, minPrev: number): boolean => {
    if (p - 1 < minPrev) return false;
    if (!isWsp(line.charCodeAt(p)) || isWsp(line.charCodeAt(p - 1))) return false;
    let q = p + 1;
    while (q < n && isWsp(line.charCodeAt(q))) q++;
    return q < n;
  };

  let out = '';
  let lineStart = 0;
  let minPrev = name.length + 2; // first line: after "Name: " and at least one value char
  while (n - lineStart > MAX_LINE) {
    let fold = -1;
    for (let p = lineStart + MAX_LINE; p > lineStart; p--) {
      if (isFoldPoint(p, minPrev)) {
        fold = p;
        break;
      }
    }
    if (fold < 0) {
      for (let p = lineStart + MAX_LINE + 1; p < n; p++) {
        if (isFoldPoint(p, minPrev)) {
          fold = p;
          break;
        }
      }
    }
    if (fold < 0) break;
    out += line.slice(lineStart, fold) + '\r\n';
    lineStart = fold;
    minPrev = lineStart + 1;
  }
  out += line.slice(lineStart) + '\r\n';
  // RFC 5322 §2.1.1: no line over 998 octets. A run of text that long without white
  // space cannot be folded; stored anyway, relays would break it or refuse the message.
  for (const physical of out.split('\r\n')) {
    const octets = Buffer.byteLength(physical);
    if (octets > MAX_LINE_OCTETS) throw new TypeError(`Header ${name}: a line of ${octets} octets cannot be folded within ${MAX_LINE_OCTETS} (RFC 5322 §2.1.1); put white space in the value`);
  }
  return out;
}
