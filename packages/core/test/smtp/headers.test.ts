import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { findHeaderEnd, formatHeader, parseHeaderBlock, type Header } from '../../src/smtp/headers.js';

const u = (x: string): Buffer => Buffer.from(x, 'utf8');
const simple = (h: Header[]) => h.map((x) => [x.name, x.value]);
const raw = (h: Header) => (typeof h.raw === 'string' ? h.raw : h.raw.toString('utf8'));

describe('findHeaderEnd', () => {
  it.each([
    ['A: 1\r\n\r\nbody', 8],
    ['A: 1\r\nB: 2\r\n\r\n', 14],
    ['\r\nbody', 2],
    ['\r\n\r\n', 2],
    ['A: 1\r\n', -1],
    ['A: 1\r\n\r', -1],
    ['A: 1\n\nbody', -1],
    ['', -1],
  ])('%j → %d', (input, want) => {
    expect(findHeaderEnd(u(input))).toBe(want);
  });
});

describe('parseHeaderBlock', () => {
  it('simple header section with a body', () => {
    const buf = u('From: a@b\r\nTo: c@d\r\nSubject: Hi there\r\n\r\nBody\r\n');
    const r = parseHeaderBlock(buf);
    expect(simple(r.headers)).toEqual([
      ['From', 'a@b'],
      ['To', 'c@d'],
      ['Subject', 'Hi there'],
    ]);
    expect(r.headerLength).toBe(buf.indexOf('Body'));
    expect(raw(r.headers[2]!)).toBe('Subject: Hi there\r\n');
    expect(Buffer.isBuffer(r.headers[0]!.raw)).toBe(true);
  });

  it('unfolds continuation lines and keeps raw', () => {
    const buf = u('Subject: a\r\n b\r\n\tc  \r\nX-Y:\r\n  z\r\n\r\n');
    const r = parseHeaderBlock(buf);
    expect(simple(r.headers)).toEqual([
      ['Subject', 'a b\tc'],
      ['X-Y', 'z'],
    ]);
    expect(raw(r.headers[0]!)).toBe('Subject: a\r\n b\r\n\tc  \r\n');
    expect(raw(r.headers[1]!)).toBe('X-Y:\r\n  z\r\n');
    expect(r.headerLength).toBe(buf.length);
  });

  it('header section without a body / without a blank line', () => {
    const a = parseHeaderBlock(u('From: a\r\nTo: b\r\n'));
    expect(simple(a.headers)).toEqual([
      ['From', 'a'],
      ['To', 'b'],
    ]);
    expect(a.headerLength).toBe(16);
    const b = parseHeaderBlock(u('From: a\r\nTo: b'));
    expect(simple(b.headers)).toEqual([
      ['From', 'a'],
      ['To', 'b'],
    ]);
    expect(b.headerLength).toBe(14);
    const c = parseHeaderBlock(u('From: a\r\n\r\n'));
    expect(simple(c.headers)).toEqual([['From', 'a']]);
    expect(c.headerLength).toBe(11);
  });

  it('no headers at all', () => {
    expect(parseHeaderBlock(u('\r\nbody'))).toEqual({ headers: [], headerLength: 2 });
    expect(parseHeaderBlock(u(''))).toEqual({ headers: [], headerLength: 0 });
  });

  it('skips garbage lines (and their continuations), tolerates obsolete space before the colon', () => {
    const buf = u(
      ' leading continuation\r\n' +
        'From a@b Mon Jan  1 00:00:00 2024\r\n' +
        'NoColonLine\r\n' +
        ' continuation of garbage\r\n' +
        'X-Ok: 1\r\n' +
        ': empty name\r\n' +
        'Bad Name: v\r\n' +
        'Y : 2\r\n' +
        'Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n' +
        'Bin\x01: x\r\n' +
        '\r\n' +
        'Body: not a header\r\n',
    );
    const r = parseHeaderBlock(buf);
    expect(simple(r.headers)).toEqual([
      ['X-Ok', '1'],
      ['Y', '2'],
      ['Date', 'Mon, 1 Jan 2024 10:00:00 +0000'],
    ]);
    expect(raw(r.headers[1]!)).toBe('Y : 2\r\n');
  });

  it('UTF-8 values (RFC 6532), colons in values, empty values', () => {
    const r = parseHeaderBlock(u('Subject: Grüße: 你好\r\nX-Empty:\r\nX-Sp:   \r\n\r\n'));
    expect(simple(r.headers)).toEqual([
      ['Subject', 'Grüße: 你好'],
      ['X-Empty', ''],
      ['X-Sp', ''],
    ]);
  });

  it('only CRLF ends a line; a bare LF stays inside the value', () => {
    const r = parseHeaderBlock(u('A: 1\nB: 2\r\n\r\n'));
    expect(simple(r.headers)).toEqual([['A', '1\nB: 2']]);
  });

  it('never throws on random bytes; headerLength is within the buffer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom('\r\n', '\r', '\n', ':', ' ', '\t', 'A', 'b', '-', 'é', '\r\n\r\n', '\r\n '), fc.string()), {
          maxLength: 40,
        }),
        (parts) => {
          const buf = u(parts.join(''));
          const r = parseHeaderBlock(buf);
          expect(r.headerLength).toBeGreaterThanOrEqual(0);
          expect(r.headerLength).toBeLessThanOrEqual(buf.length);
          const end = findHeaderEnd(buf);
          expect(r.headerLength).toBe(end < 0 ? buf.length : end);
          for (const h of r.headers) {
            expect(h.name).not.toMatch(/[\s:]/);
            expect(h.value).not.toContain('\r\n');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('formatHeader', () => {
  it('refuses a value whose unbreakable run would make a line over 998 octets (RFC 5322 §2.1.1); folds long text with spaces', () => {
    expect(() => formatHeader('X-Token', 'y'.repeat(1_500))).toThrow(/Header X-Token: a line of 1509 octets cannot be folded within 998/);
    // counted in octets: 500 two-octet characters are 1,000 octets
    expect(() => formatHeader('X-T', 'é'.repeat(500))).toThrow(/cannot be folded within 998/);
    expect(formatHeader('X-T', 'y'.repeat(980)).length).toBe('X-T: '.length + 980 + 2);
    const words = formatHeader('X-Words', 'word '.repeat(400).trim());
    for (const line of words.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
  });

  it('short header', () => {
    expect(formatHeader('Subject', 'Hello')).toBe('Subject: Hello\r\n');
    expect(formatHeader('X-Empty', '')).toBe('X-Empty:\r\n');
  });

  it('exactly 78 characters is not folded', () => {
    const v = 'x'.repeat(78 - 'Subject: '.length - 2) + ' y';
    const out = formatHeader('Subject', v);
    expect(out).toBe(`Subject: ${v}\r\n`);
    expect(out.length).toBe(80);
  });

  it('folds long values at white space, lines ≤ 78, unfolds back', () => {
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`);
    const value = words.join(' ');
    const out = formatHeader('Received', value);
    const lines = out.split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(78);
    for (const l of lines.slice(1)) expect(l.startsWith(' ')).toBe(true);
    expect(out.replace(/\r\n(?=[ \t])/g, '')).toBe(`Received: ${value}\r\n`);
    expect(parseHeaderBlock(u(out + '\r\n')).headers[0]!.value).toBe(value);
  });

  it('a word longer than the limit stays on its own line', () => {
    const long = 'a'.repeat(100);
    const out = formatHeader('X', `short ${long} tail`);
    expect(out).toBe(`X: short\r\n ${long}\r\n tail\r\n`);
    expect(formatHeader('X', long)).toBe(`X: ${long}\r\n`);
  });

  it('never creates a white-space-only line', () => {
    const out = formatHeader('X', 'a'.repeat(70) + '          ' + 'b'.repeat(5) + ' '.repeat(90));
    for (const l of out.split('\r\n').slice(0, -1)) expect(l.trim()).not.toBe('');
  });

  it.each(['a\r\nBcc: evil@x', 'a\nb', 'a\rb', 'a\0b', '\r\n'])('rejects header injection in the value %j', (v) => {
    expect(() => formatHeader('Subject', v)).toThrow(TypeError);
  });

  it.each(['', 'Bad Name', 'A:B', 'X\r\nY', 'Ünï', 'Tab\t'])('rejects an invalid name %j', (n) => {
    expect(() => formatHeader(n, 'v')).toThrow(TypeError);
  });

  it('property: output parses back to the (trimmed) value; lines are short where a fold point exists', () => {
    const valueArb = fc
      .array(fc.oneof(fc.constantFrom(' ', '\t', 'ab', 'word', 'x'.repeat(30), 'é', '你好', ':'), fc.string({ maxLength: 12 })), {
        maxLength: 40,
      })
      .map((a) => a.join('').replace(/[\r\n\0]/g, ''));
    fc.assert(
      fc.property(valueArb, (value) => {
        const out = formatHeader('X-Test', value);
        expect(out.endsWith('\r\n')).toBe(true);
        const r = parseHeaderBlock(u(out + '\r\n'));
        expect(r.headers).toHaveLength(1);
        expect(r.headers[0]!.value).toBe(value.replace(/^[ \t]+|[ \t]+$/g, ''));
        expect(raw(r.headers[0]!)).toBe(out);
        const lines = out.split('\r\n').slice(0, -1);
        for (const l of lines.slice(1)) {
          expect(l[0] === ' ' || l[0] === '\t').toBe(true);
          expect(l.trim()).not.toBe('');
        }
        // A line longer than 78 only when it had no usable fold point within the limit.
        lines.forEach((l, k) => {
          if (l.length <= 78) return;
          const ws = (c: string | undefined) => c === ' ' || c === '\t';
          for (let r = k === 0 ? 'X-Test: '.length + 1 : 1; r <= 78; r++) {
            const candidate = ws(l[r]) && !ws(l[r - 1]) && /[^ \t]/.test(l.slice(r));
            expect(candidate).toBe(false);
          }
        });
      }),
      { numRuns: 2000 },
    );
  });
});
