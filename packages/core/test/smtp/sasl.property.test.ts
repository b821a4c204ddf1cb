/**
 * Property tests of the AUTH PLAIN / AUTH LOGIN response decoders: a client's line is
 * arbitrary text, so whatever it holds (non-base64, bad padding, NULs, megabytes) the
 * decoders answer a value or undefined and never throw. Node's Buffer is the oracle
 * for what base64 decodes to.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64Line, decodeSaslPlain } from '../../src/smtp/sasl.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** RFC 4648 §4 padded base64, written out independently of the source's regex. */
const PADDED_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Text a client may send: printable, any code unit (lone surrogates too), and base64-looking strings. */
const base64Char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='.split(''), '-', '_', ' ', '\t', '\0', '\r', '\n', '.', '*');
const anyLine = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string16bits({ maxLength: 40 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.array(base64Char, { maxLength: 40 }).map((cs) => cs.join('')),
  fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes).toString('base64')),
);
/** Whitespace the decoder trims (the line's CRLF is already gone; a stray space or tab may remain). */
const pad = fc.constantFrom('', ' ', '\t', '  ', ' \t');
/** Well-formed UTF-16 without NUL: what a credential field can be. */
const field = fc.fullUnicodeString({ maxLength: 24 }).map((s) => s.replace(/\0/g, ''));

describe('decodeBase64Line (AUTH LOGIN)', () => {
  it('never throws; accepts exactly RFC 4648 padded base64 and decodes it as Buffer does', () => {
    fc.assert(
      fc.property(anyLine, (line) => {
        const decoded = decodeBase64Line(line);
        const text = line.trim();
        expect(decoded !== undefined).toBe(PADDED_BASE64.test(text));
        if (decoded !== undefined) expect(decoded).toBe(Buffer.from(text, 'base64').toString('utf8'));
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips any UTF-8 text, with surrounding blanks', () => {
    fc.assert(
      fc.property(fc.fullUnicodeString({ maxLength: 60 }), pad, pad, (text, before, after) => {
        expect(decodeBase64Line(`${before}${b64(text)}${after}`)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses base64 with one letter replaced by a blank, NUL, line break or URL-safe letter', () => {
    const junk = fc.constantFrom(' ', '\t', '\0', '\r', '\n', '-', '_', '.', '*');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 3, maxLength: 40 }), junk, fc.nat(), (bytes, bad, at) => {
        const good = Buffer.from(bytes).toString('base64');
        const i = 1 + (at % (good.length - 2)); // strictly inside, so trimming cannot remove it
        expect(decodeBase64Line(good.slice(0, i) + bad + good.slice(i + 1))).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('an over-long line (1 MiB) is decoded or refused without throwing', () => {
    const big = Buffer.alloc(768 * 1024, 0x61).toString('base64');
    expect(decodeBase64Line(big)).toBe('a'.repeat(768 * 1024));
    expect(decodeBase64Line(`${big}=`)).toBeUndefined();
    expect(decodeBase64Line(`${big.slice(1)}`)).toBeUndefined();
  });
});

describe('decodeSaslPlain (RFC 4616)', () => {
  it('round-trips authzid NUL authcid NUL passwd; an empty authzid reads as absent', () => {
    fc.assert(
      fc.property(field, field.filter(Boolean), field.filter(Boolean), (authzid, username, password) => {
        expect(decodeSaslPlain(b64(`${authzid}\0${username}\0${password}`))).toEqual({ authzid: authzid || undefined, username, password });
      }),
      { numRuns: 500 },
    );
  });

  it('never throws; whatever it accepts has two NULs, a user and a password, and re-encodes to the same line', () => {
    const nulHeavy = fc
      .array(fc.oneof(fc.constant('\0'), fc.fullUnicodeString({ maxLength: 6 })), { maxLength: 8 })
      .map((parts) => b64(parts.join('')));
    fc.assert(
      fc.property(fc.oneof(anyLine, nulHeavy), (line) => {
        const creds = decodeSaslPlain(line);
        if (creds === undefined) return;
        expect(creds.username).not.toBe('');
        expect(creds.password).not.toBe('');
        expect(creds.authzid).not.toBe('');
        for (const f of [creds.authzid ?? '', creds.username, creds.password]) expect(f).not.toContain('\0');
        const decoded = decodeBase64Line(line)!;
        expect(decoded).toBe(`${creds.authzid ?? ''}\0${creds.username}\0${creds.password}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses anything but exactly three fields with a user and a password', () => {
    const fields = fc.array(field, { maxLength: 6 });
    fc.assert(
      fc.property(fields, (parts) => {
        const creds = decodeSaslPlain(b64(parts.join('\0')));
        const wellFormed = parts.length === 3 && parts[1] !== '' && parts[2] !== '';
        expect(creds !== undefined).toBe(wellFormed);
      }),
      { numRuns: 1000 },
    );
  });
});
