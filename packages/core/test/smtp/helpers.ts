/** Test helpers for the smtp parsers (not a test file itself). */
import { DataDecoder, type BareLineEndingPolicy } from '../../src/smtp/data-decoder.js';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');
export const s = (buf: Buffer): string => buf.toString('latin1');

export interface StreamResult {
  body: string;
  /** consumed per write */
  consumed: number[];
  /** total consumed */
  total: number;
  done: boolean;
  /** index of the write that reported done first (-1 if none) */
  doneAt: number;
  violation: 'bare-lf' | 'bare-cr' | null;
  size: number;
  bare: number;
}

export function decodeChunks(policy: BareLineEndingPolicy, chunks: Array<string | Buffer>): StreamResult {
  const d = new DataDecoder(policy);
  const parts: Buffer[] = [];
  const consumed: number[] = [];
  let done = false;
  let doneAt = -1;
  chunks.forEach((c, idx) => {
    const r = d.write(typeof c === 'string' ? b(c) : c);
    parts.push(...r.body);
    consumed.push(r.consumed);
    if (r.done && !done) doneAt = idx;
    if (done && (r.consumed !== 0 || r.body.length !== 0 || !r.done)) throw new Error('write after done returned data');
    done = r.done;
  });
  const body = Buffer.concat(parts);
  if (body.length !== d.size) throw new Error(`size ${d.size} != body ${body.length}`);
  return {
    body: s(body),
    consumed,
    total: consumed.reduce((a, x) => a + x, 0),
    done,
    doneAt,
    violation: d.violation,
    size: d.size,
    bare: d.bareLineEndings,
  };
}

/** Splits buf at the given (unsorted, possibly duplicate / out of range) positions; empty chunks are kept. */
export function splitAt(buf: Buffer, positions: number[]): Buffer[] {
  const cuts = positions.map((p) => Math.min(Math.max(0, p), buf.length)).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

export interface RefResult {
  body: string;
  consumed: number;
  done: boolean;
  violation: 'bare-lf' | 'bare-cr' | null;
  bare: number;
}

/**
 * Whole-input reference model of the decoder, written independently of the
 * streaming state machine. Only meaningful when the input is complete (done).
 */
export function referenceDecode(input: Buffer, policy: BareLineEndingPolicy): RefResult {
  let content: Buffer;
  let consumed: number;
  let done: boolean;
  if (input.length >= 3 && s(input.subarray(0, 3)) === '.\r\n') {
    content = Buffer.alloc(0);
    consumed = 3;
    done = true;
  } else {
    const idx = input.indexOf('\r\n.\r\n', 0, 'latin1');
    if (idx < 0) {
      content = input;
      consumed = input.length;
      done = false;
    } else {
      content = input.subarray(0, idx + 2);
      consumed = idx + 5;
      done = true;
    }
  }
  const c = s(content);
  // Bare line endings.
  let violation: RefResult['violation'] = null;
  let bare = 0;
  for (let i = 0; i < c.length; i++) {
    if (c[i] === '\r' && c[i + 1] !== '\n') {
      bare++;
      violation ??= 'bare-cr';
    } else if (c[i] === '\n' && c[i - 1] !== '\r') {
      bare++;
      violation ??= 'bare-lf';
    }
  }
  let body = '';
  if (policy === 'reject') {
    for (let i = 0; i < c.length; i++) {
      const lineStart = i === 0 || (c[i - 1] === '\n' && c[i - 2] === '\r');
      if (lineStart && c[i] === '.') continue;
      body += c[i];
    }
  } else {
    // Lines end at CRLF, bare CR or bare LF; each loses one leading dot; re-joined with CRLF.
    let line = '';
    let i = 0;
    const emit = (): void => {
      body += (line.startsWith('.') ? line.slice(1) : line) + '\r\n';
      line = '';
    };
    while (i < c.length) {
      const ch = c[i] as string;
      if (ch === '\r') {
        emit();
        i += c[i + 1] === '\n' ? 2 : 1;
      } else if (ch === '\n') {
        emit();
        i++;
      } else {
        line += ch;
        i++;
      }
    }
    if (line !== '') body += line.startsWith('.') ? line.slice(1) : line; // only when not done
  }
  return { body, consumed, done, violation: policy === 'reject' ? violation : null, bare };
}

/** What a correct client sends for `body`: CRLF line endings, final CRLF, leading dots doubled, then `.\r\n`. */
export function clientEncode(body: Buffer): { wire: Buffer; expected: Buffer } {
  const lines: string[] = [];
  const t = s(body);
  let line = '';
  for (let i = 0; i < t.length; i++) {
    const ch = t[i] as string;
    if (ch === '\r') {
      lines.push(line);
      line = '';
      if (t[i + 1] === '\n') i++;
    } else if (ch === '\n') {
      lines.push(line);
      line = '';
    } else {
      line += ch;
    }
  }
  if (line !== '') lines.push(line);
  const expected = lines.map((l) => l + '\r\n').join('');
  const wire = lines.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('') + '.\r\n';
  return { wire: b(wire), expected: b(expected) };
}
