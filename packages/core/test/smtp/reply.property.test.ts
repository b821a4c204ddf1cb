/**
 * Property tests of reply formatting: every reply the server sends goes through
 * `formatReply`, often with text a plugin chose (at run time anything: a string with
 * CR/LF in it, an array, a number, an object whose toString throws). Whatever the text,
 * the output is one well-formed reply: CRLF-terminated lines that each start with the
 * code, `-` on every line but the last, and no CR or LF inside a line, so a plugin's
 * text can never inject a second reply.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatReply, type Reply } from '../../src/smtp/reply.js';
import { accept, disconnect, reject, tempfail, verdictToReply, type Stage, type VerdictOptions } from '../../src/verdict.js';

/** Text with line breaks of every kind where they hurt most. */
const lineText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\n250 OK', '\n.\n', '\0', '\u2028', '\u0085')), { maxLength: 8 }).map((p) => p.join('')),
  fc.fullUnicodeString({ maxLength: 12 }),
  fc.string16bits({ maxLength: 12 }),
);

/** What a JavaScript plugin might pass as text, typed or not. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  lineText,
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, undefined, true, Symbol('s'), 10n, {}, [], Object.create(null), new Error('boom\r\n250 OK')),
  lineText.map((t) => ({ toString: () => t })),
  fc.constant({
    toString() {
      throw new Error('no text');
    },
  }),
);

const replyText: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: lineText },
  { weight: 2, arbitrary: fc.array(lineText, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(hostileValue, { maxLength: 4 }) },
  { weight: 1, arbitrary: hostileValue },
);

const enhancedCode = fc.tuple(fc.constantFrom(2, 4, 5), fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 })).map((p) => p.join('.'));

/** The lines of one formatted reply, checked for the wire rules; returns their texts (after `ddd[ -]`). */
function lines(out: string, code: number): string[] {
  expect(out.endsWith('\r\n')).toBe(true);
  const raw = out.slice(0, -2).split('\r\n');
  raw.forEach((line, i) => {
    expect(line).not.toMatch(/[\r\n]/);
    expect(line.slice(0, 4)).toBe(`${code}${i === raw.length - 1 ? ' ' : '-'}`);
  });
  return raw.map((line) => line.slice(4));
}

/** What a reply line may carry: printable US-ASCII (a tab is a space; anything else one `?` per character). */
const ascii = (t: string) => t.replace(/\t/g, ' ').replace(/[^\x20-\x7e\n]/gu, '?');

describe('formatReply', () => {
  it('no line is longer than 512 octets with its CRLF, and only printable ASCII is sent; a long text is continued, not cut', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 200, max: 599 }),
        fc.option(enhancedCode, { nil: undefined }),
        fc.array(fc.oneof(fc.fullUnicodeString({ maxLength: 40 }), fc.constantFrom(' ', 'x'.repeat(300), 'é', '\t')), { maxLength: 60 }).map((p) => p.join('')),
        (code, enhanced, text) => {
          const out = formatReply({ code, enhanced, text } as Reply);
          for (const line of out.split('\r\n').slice(0, -1)) {
            expect(Buffer.byteLength(`${line}\r\n`)).toBeLessThanOrEqual(512);
            expect(line).toMatch(/^[\x20-\x7e]*$/);
          }
          const pieces = lines(out, code).map((t) => (enhanced ? t.slice(enhanced.length + 1) : t));
          // the pieces are the text (broken at a space, which the break replaces, or inside a word)
          expect(pieces.join('').replace(/ /g, '')).toBe(ascii(text.replace(/[\r\n]+/g, ' ')).replace(/ /g, ''));
        },
      ),
      { numRuns: 1000 },
    );
  });


  it('gives exactly one well-formed reply, whatever the text, and every line carries the code and the enhanced code', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), fc.option(enhancedCode, { nil: undefined }), replyText, (code, enhanced, text) => {
        const out = formatReply({ code, enhanced, text } as Reply);
        const texts = lines(out, code);
        const expected = typeof text === 'string' ? text.split('\n').length : Array.isArray(text) ? Math.max(1, text.length) : 1;
        expect(texts).toHaveLength(expected);
        if (enhanced) for (const t of texts) expect(t.startsWith(`${enhanced} `)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps the text: a string is split at LF, a CR left inside a line becomes one space, all but printable ASCII `?`', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), lineText, (code, text) => {
        const texts = lines(formatReply({ code, text }), code);
        expect(texts.join('\n')).toBe(ascii(text.replace(/\r+/g, ' ')));
      }),
      { numRuns: 1000 },
    );
  });

  it('an array gives one line per element, each element its own line whatever it holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), enhancedCode, fc.array(lineText, { minLength: 1, maxLength: 6 }), (code, enhanced, text) => {
        const texts = lines(formatReply({ code, enhanced, text }), code);
        expect(texts).toEqual(text.map((t) => `${enhanced} ${ascii(t.replace(/[\r\n]+/g, ' '))}`));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('a plugin verdict, turned into a reply and formatted', () => {
  const stages: Stage[] = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'data', 'queue'];
  const makers = { accept, reject, tempfail, disconnect } as const;
  const options: fc.Arbitrary<VerdictOptions> = fc.record(
    {
      code: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(250, 421, 450, 550, 554, 599, 600, 199, 0), fc.double()),
      enhanced: fc.oneof(enhancedCode, lineText, fc.constantFrom('5.7.1\r\n250 2.0.0 OK', '2.0.0 x', '9.9.9', '5.1234.1', '')),
    },
    { requiredKeys: [] },
  );

  it('is one well-formed reply whose class follows the verdict kind, with a valid enhanced code', () => {
    fc.assert(
      fc.property(fc.constantFrom(...stages), fc.constantFrom(...(Object.keys(makers) as Array<keyof typeof makers>)), hostileValue, options, (stage, kind, message, opts) => {
        const reply = verdictToReply(makers[kind](message as string, opts), stage);
        const texts = lines(formatReply(reply), reply.code);
        const wantClass = kind === 'accept' ? 2 : kind === 'reject' ? 5 : 4;
        expect(Math.floor(reply.code / 100)).toBe(wantClass);
        expect(Number.isInteger(reply.code) && reply.code < 600).toBe(true);
        // Only the connect stage's 220 goes without an enhanced code (RFC 2034 exempts greetings).
        if (reply.enhanced === undefined) expect([stage, reply.code]).toEqual(['connect', 220]);
        else {
          expect(reply.enhanced).toMatch(new RegExp(`^${wantClass}\\.\\d{1,3}\\.\\d{1,3}$`));
          for (const t of texts) expect(t.startsWith(`${reply.enhanced} `)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
