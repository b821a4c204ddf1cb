/**
 * DSN parameter parsing (RFC 3461, RFC 6533): RET, ENVID, NOTIFY, ORCPT, the
 * utf-8-addr-xtext decoder and encoder, and properties: never throws, what is
 * accepted is safe to write into a report, encode → decode round-trips.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeXtext, parseRcptTo, parseMailFrom } from '../../src/smtp/address.js';
import {
  decodeUtf8AddrXtext,
  encodeUtf8AddrXtext,
  formatOrcpt,
  parseEnvid,
  parseNotify,
  parseOrcpt,
  parseRet,
  recipientDsn,
  transactionDsn,
} from '../../src/smtp/dsn.js';

const isError = (v: unknown): boolean => typeof v === 'object' && v !== null && 'code' in v;

describe('RET and ENVID', () => {
  it.each([
    ['FULL', 'FULL'],
    ['HDRS', 'HDRS'],
    ['hdrs', 'HDRS'],
  ])('RET=%s → %s', (v, want) => expect(parseRet(v)).toBe(want));

  it.each(['HEADERS', 'FULLX', '', true] as const)('RET=%j is 501 5.5.4', (v) => {
    expect(parseRet(v)).toEqual({ code: 501, enhanced: '5.5.4', text: 'Bad RET parameter: use RET=FULL or RET=HDRS' });
  });

  it.each([
    ['QQ314159', 'QQ314159'],
    ['a+2Bb+3Dc', 'a+b=c'],
    ['with+20space', 'with space'],
    ['x'.repeat(100), 'x'.repeat(100)],
    ['+41'.repeat(100), 'A'.repeat(100)],
  ])('ENVID=%s → %j', (v, want) => expect(parseEnvid(v)).toBe(want));

  it.each([
    ['101 characters', 'x'.repeat(101)],
    ['bad xtext', 'a+4'],
    ['a control character', 'a+0Db'],
    ['a line break (header injection)', 'a+0D+0AX-Evil:+20yes'],
    ['non-ASCII octets', '+C3+A9'],
    ['no value', true],
  ] as const)('ENVID with %s is 501 5.5.4', (_why, v) => {
    expect(parseEnvid(v)).toMatchObject({ code: 501, enhanced: '5.5.4', text: expect.stringMatching(/^Bad ENVID parameter/) });
  });
});

describe('NOTIFY', () => {
  it.each([
    ['NEVER', ['NEVER']],
    ['never', ['NEVER']],
    ['SUCCESS', ['SUCCESS']],
    ['FAILURE,DELAY', ['FAILURE', 'DELAY']],
    ['success,failure,delay', ['SUCCESS', 'FAILURE', 'DELAY']],
    ['DELAY,DELAY', ['DELAY']],
  ])('NOTIFY=%s → %j', (v, want) => expect(parseNotify(v)).toEqual(want));

  it.each(['NEVER,SUCCESS', 'SUCCESS,NEVER', 'SUCCESS,', ',FAILURE', 'FAILURE,,DELAY', 'ALWAYS', 'SUCCESS;FAILURE', ''])('NOTIFY=%s is 501 5.5.4', (v) => {
    expect(parseNotify(v)).toMatchObject({ code: 501, enhanced: '5.5.4', text: expect.stringMatching(/^Bad NOTIFY parameter: use NEVER, or a comma list/) });
  });
});

describe('ORCPT', () => {
  it.each([
    ['rfc822;bob@example.test', { type: 'rfc822', address: 'bob@example.test' }],
    ['RFC822;a+2Bb@example.test', { type: 'rfc822', address: 'a+b@example.test' }],
    ['rfc822;"a+20b"@x.test', { type: 'rfc822', address: '"a b"@x.test' }],
    ['utf-8;\\x{E9}l\\x{E8}ve@\\x{E9}cole.test', { type: 'utf-8', address: 'élève@école.test' }],
    ['UTF-8;\\x{1F600}@x.test', { type: 'utf-8', address: '😀@x.test' }],
    ['utf-8;é@x.test', { type: 'utf-8', address: 'é@x.test' }],
    // nodemailer xtext-encodes the whole value whatever the type: read as UTF-8 octets.
    ['utf-8;+C3+A9@x.test', { type: 'utf-8', address: 'é@x.test' }],
    ['x400;c+3Dus+3Ba+3D+20+3Bp+3Dexample', { type: 'x400', address: 'c=us;a= ;p=example' }],
  ])('ORCPT=%s', (v, want) => expect(parseOrcpt(v)).toEqual(want));

  it.each([
    ['no type', 'bob@example.test'],
    ['empty type', ';bob@example.test'],
    ['empty address', 'rfc822;'],
    ['bad xtext', 'rfc822;a+4'],
    ['a line break', 'rfc822;a+0D+0Ab@x.test'],
    ['non-ASCII in rfc822', 'rfc822;+C3+A9@x.test'],
    ['a control character in utf-8', 'utf-8;a\\x{0}b@x.test'],
    ['a C1 control in utf-8', 'utf-8;a\\x{85}b@x.test'],
    ['a surrogate in utf-8', 'utf-8;\\x{D800}@x.test'],
    ['beyond Unicode', 'utf-8;\\x{110000}@x.test'],
    ['seven hex digits', 'utf-8;\\x{0000041}@x.test'],
    ['an unterminated escape', 'utf-8;\\x{41@x.test'],
    ['a lone backslash', 'utf-8;a\\b@x.test'],
    ['invalid UTF-8 octets', 'utf-8;+C3@x.test'],
    ['a type that is not an atom', 'rfc(822);a@x.test'],
    ['no value', true],
  ] as const)('ORCPT with %s is 501 5.5.4', (_why, v) => {
    expect(parseOrcpt(v)).toMatchObject({ code: 501, enhanced: '5.5.4', text: expect.stringMatching(/^Bad ORCPT parameter/) });
  });

  it('at most 500 characters, type and semicolon included', () => {
    const local = 'a'.repeat(64);
    const ok = `rfc822;${local}@${'d'.repeat(500 - 7 - 65)}`;
    expect(parseOrcpt(ok)).toHaveProperty('address');
    expect(parseOrcpt(ok + 'd')).toEqual({ code: 501, enhanced: '5.5.4', text: 'Bad ORCPT parameter: longer than 500 characters' });
  });

  it('formatOrcpt gives an ASCII value a next hop decodes to the same', () => {
    expect(formatOrcpt({ type: 'rfc822', address: 'a+b=c d@x.test' })).toBe('rfc822;a+2Bb+3Dc+20d@x.test');
    expect(formatOrcpt({ type: 'utf-8', address: 'élève+1@x.test' })).toBe('utf-8;\\x{E9}l\\x{E8}ve\\x{2B}1@x.test');
  });
});

describe('duplicates (RFC 3461 §4: each at most once)', () => {
  it.each([
    ['MAIL', 'FROM:<a@b.test> RET=HDRS RET=HDRS', 'RET'],
    ['MAIL', 'FROM:<a@b.test> ENVID=x RET=FULL envid=x', 'ENVID'],
    ['RCPT', 'TO:<a@b.test> NOTIFY=NEVER NOTIFY=NEVER', 'NOTIFY'],
    ['RCPT', 'TO:<a@b.test> ORCPT=rfc822;a@b.test ORCPT=rfc822;c@d.test', 'ORCPT'],
  ])('%s %s → 501 5.5.4 Duplicate parameter %s', (verb, args, key) => {
    const r = verb === 'MAIL' ? parseMailFrom(args, { smtputf8: true }) : parseRcptTo(args, { smtputf8: true });
    expect(r).toEqual({ error: { code: 501, enhanced: '5.5.4', text: `Duplicate parameter ${key}` } });
  });
});

describe('transactionDsn / recipientDsn', () => {
  it('undefined without DSN parameters; decoded values with them', () => {
    expect(transactionDsn(new Map([['SIZE', '10']]))).toEqual({ dsn: undefined });
    expect(transactionDsn(new Map<string, string | true>([['RET', 'hdrs'], ['ENVID', 'id+2B1']]))).toEqual({ dsn: { ret: 'HDRS', envid: 'id+1' } });
    expect(recipientDsn(new Map())).toEqual({ dsn: undefined });
    expect(recipientDsn(new Map([['NOTIFY', 'failure,delay'], ['ORCPT', 'rfc822;x+40y@z.test']]))).toEqual({
      dsn: { notify: ['FAILURE', 'DELAY'], orcpt: { type: 'rfc822', address: 'x@y@z.test' } },
    });
  });

  it('the 501 of the first bad value', () => {
    expect(transactionDsn(new Map<string, string | true>([['RET', 'ALL']]))).toMatchObject({ error: { code: 501, enhanced: '5.5.4' } });
    expect(recipientDsn(new Map([['NOTIFY', 'NEVER,SUCCESS']]))).toMatchObject({ error: { code: 501, enhanced: '5.5.4' } });
    expect(recipientDsn(new Map([['ORCPT', 'no-semicolon']]))).toMatchObject({ error: { code: 501, enhanced: '5.5.4' } });
  });

  it('is frozen (plugins share one transaction)', () => {
    const result = recipientDsn(new Map([['NOTIFY', 'SUCCESS']]));
    const dsn = 'dsn' in result ? result.dsn! : undefined;
    expect(Object.isFrozen(dsn)).toBe(true);
    expect(Object.isFrozen(dsn?.notify)).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Properties and fuzz

const tricky = fc.constantFrom('+', '=', '\\', '\\x{', '}', ';', ',', ' ', '\0', '\r', '\n', '+0D', '+0A', '+2B', '+C3', '+A9', 'é', '😀', '\ud800', 'a', 'Z', '9', 'rfc822', 'utf-8', '\\x{E9}', '\\x{D800}', '\\x{110000}', 'x'.repeat(120));
const trickyString = fc.oneof(
  fc.array(tricky, { maxLength: 25 }).map((a) => a.join('')),
  fc.string({ unit: 'binary' }),
  fc.fullUnicodeString(),
);

/** Nothing a DSN parameter decodes to may break a header line of the report. */
function safeForReport(s: string): void {
  // eslint-disable-next-line no-control-regex
  expect(s).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
}

describe('DSN parameter properties', () => {
  it('(fuzz) the parsers never throw; whatever they accept is safe to write into a report', () => {
    fc.assert(
      fc.property(trickyString, (v) => {
        const ret = parseRet(v);
        expect(isError(ret) || ret === 'FULL' || ret === 'HDRS').toBe(true);
        const envid = parseEnvid(v);
        if (typeof envid === 'string') {
          expect(envid.length).toBeLessThanOrEqual(100);
          expect(envid).toMatch(/^[\x20-\x7e]+$/);
        } else expect(envid.code).toBe(501);
        const notify = parseNotify(v);
        if (Array.isArray(notify)) expect(notify.length === 1 || !notify.includes('NEVER')).toBe(true);
        else expect(isError(notify)).toBe(true);
        for (const value of [v, `rfc822;${v}`, `utf-8;${v}`]) {
          const orcpt = parseOrcpt(value);
          if ('address' in orcpt) {
            safeForReport(orcpt.address);
            expect(orcpt.type.length + 1 + orcpt.address.length).toBeLessThanOrEqual(500);
            if (orcpt.type !== 'utf-8') expect(orcpt.address).toMatch(/^[\x20-\x7e]+$/);
            // What we pass on is ASCII and reads back to the same.
            const passed = formatOrcpt(orcpt);
            expect(passed).toMatch(/^[\x21-\x7e]+$/);
            expect(parseOrcpt(passed)).toEqual(orcpt);
          } else expect(orcpt.code).toBe(501);
        }
        // The decoder gives well-formed Unicode or nothing (no lone surrogates from bad octets).
        const decoded = decodeUtf8AddrXtext(v);
        if (decoded !== null) expect(Buffer.from(decoded, 'utf8').toString('utf8')).toBe(decoded);
      }),
      { numRuns: 5000 },
    );
  });

  it('utf-8-addr-xtext: decode(encode(s)) === s for any Unicode text; the encoding is ASCII', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString({ minLength: 1 }), (s) => {
        const encoded = encodeUtf8AddrXtext(s);
        expect(encoded).toMatch(/^[\x21-\x7e]+$/);
        expect(decodeUtf8AddrXtext(encoded)).toBe(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('an rfc822 ORCPT of any printable ASCII address round-trips through xtext', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 200 }), (address) => {
        expect(parseOrcpt(`rfc822;${encodeXtext(address)}`)).toEqual({ type: 'rfc822', address });
      }),
      { numRuns: 2000 },
    );
  });
});
