/**
 * Property tests of the Received: trace header (RFC 5321 §4.4). The HELO name and the
 * recipient come from the client and may hold anything; the header built from them
 * must still be one header: folded only where the gateway folds it (CRLF + TAB), no
 * other CR or LF, every line at most 998 octets (RFC 5322 §2.1.1), ASCII unless the
 * message is SMTPUTF8, well-formed Unicode, and the client's strings cannot add
 * clauses or comments of their own.
 */
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { protocolKeyword, receivedHeaderValue, rfc5322Date, type ReceivedInfo } from '../../src/smtp/received-header.js';

/**
 * A client's string as it comes off the wire (decoded UTF-8, so well-formed): printable,
 * astral characters, bidi and zero-width characters, and the syntax of the header itself.
 */
const wire = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.fullUnicodeString({ maxLength: 300 }),
  fc.array(fc.constantFrom('a', '.', '\r', '\n', '\r\n', '\t', ' ', '(', ')', '<', '>', ';', '\\', '"', '\0', '\u202e', '\u200b', '\u00a0', '\u2028', '\ud83d\ude00', 'é', 'by x', 'for <x@y>'), { maxLength: 400 }).map((p) => p.join('')),
);
/** Code points of `text` up to `octets` bytes of UTF-8. */
const cut = (text: string, octets: number): string => {
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > octets) break;
    out += ch;
  }
  return out;
};
/** What the engine takes as a HELO name (engine.ts `helo`): 1 to 255 characters, no blank, no control, format or private-use character. */
const heloName = wire.map((t) => cut(t.replace(/[\s\p{Cc}\p{Cf}\p{Co}]/gu, ''), 255)).filter((t) => t.length > 0);
/** A recipient's text: at most 254 octets (the 256-octet path without its angle brackets), anything else possible. */
const recipient = wire.map((t) => cut(t, 254));

const info: fc.Arbitrary<ReceivedInfo> = fc.record({
  heloName: fc.option(heloName, { nil: undefined }),
  remoteAddress: fc.oneof(fc.ipV4(), fc.ipV6()),
  hostname: fc.domain(),
  esmtp: fc.boolean(),
  tls: fc.boolean(),
  authenticated: fc.boolean(),
  smtputf8: fc.boolean(),
  id: fc.stringMatching(/^[0-9A-Z]{6,20}$/),
  recipients: fc.array(recipient, { maxLength: 3 }),
  date: fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z') }),
  internal: fc.boolean(),
});

/** True if `s` has no unpaired surrogate (it encodes to UTF-8 and back unchanged). */
const wellFormed = (s: string): boolean => Buffer.from(s, 'utf8').toString('utf8') === s;

describe('receivedHeaderValue', () => {
  it('is one folded header: CRLF only before a TAB, lines of at most 998 octets, ASCII unless SMTPUTF8, well-formed Unicode', () => {
    fc.assert(
      fc.property(info, (i) => {
        const value = receivedHeaderValue(i);
        const lines = `Received: ${value}`.split('\r\n');
        for (const [n, line] of lines.entries()) {
          expect(line).not.toMatch(/[\r\n]/);
          if (n > 0) expect(line.startsWith('\t')).toBe(true);
          expect(Buffer.byteLength(line, 'utf8')).toBeLessThanOrEqual(998);
        }
        expect(value).not.toMatch(/[\0-\x08\x0b\x0c\x0e-\x1f\x7f]/);
        if (!i.smtputf8) expect(value).toMatch(/^[\x09\x0d\x0a\x20-\x7e]*$/);
        expect(wellFormed(value)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("the client's strings stay in their slots: from (unless the gateway made the message), by, with, id, an optional for, then the date", () => {
    const FROM = /^from (\S+) \(\[(IPv6:)?([^\]]+)\]\)\r\n\t/su;
    const REST = /^by (\S+) \(Mailgate\)(?: with (\S+))? id (\S+)(?:\r\n\tfor <([^<>\0- ]*)>)?;\r\n\t(.+)$/su;
    fc.assert(
      fc.property(info, (i) => {
        const value = receivedHeaderValue(i);
        const from = FROM.exec(value);
        expect(from !== null, JSON.stringify(value)).toBe(!i.internal);
        if (from) {
          const [, helo, v6, address] = from;
          expect(helo).not.toMatch(/[()<>;\\\s]/u);
          expect(Array.from(helo!).length).toBeLessThanOrEqual(255);
          if (i.heloName === undefined) expect(helo).toBe('unknown');
          expect(address).toBe(i.remoteAddress);
          expect(v6 !== undefined).toBe(isIP(i.remoteAddress) === 6);
        }
        const rest = REST.exec(value.slice(from?.[0].length ?? 0));
        expect(rest, JSON.stringify(value)).not.toBeNull();
        const [, by, protocol, id, rcpt, date] = rest!;
        expect([by, protocol, id]).toEqual([i.hostname, i.internal ? undefined : protocolKeyword(i), i.id]);
        // A `for` clause only for a single recipient: a Bcc list is never disclosed.
        expect(rcpt !== undefined).toBe(i.recipients.length === 1);
        // ASCII blanks and controls never; a no-break space may stay in an SMTPUTF8 address (it is no FWS in RFC 5322).
        if (rcpt !== undefined) expect(rcpt).not.toMatch(/[()<>;\\\0- \x7f]/u);
        expect(date).toBe(rfc5322Date(i.date));
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps a harmless HELO name as it is', () => {
    const ldh = fc.domain();
    fc.assert(
      fc.property(info, ldh, (i, helo) => {
        expect(receivedHeaderValue({ ...i, heloName: helo, internal: false })).toMatch(new RegExp(`^from ${helo.replace(/\./g, '\\.')} \\(`));
      }),
      { numRuns: 200 },
    );
  });
});

describe('protocolKeyword', () => {
  it('is always a "with" keyword registered by RFC 3848 / RFC 6531', () => {
    const registered = ['SMTP', 'ESMTP', 'ESMTPA', 'ESMTPS', 'ESMTPSA', 'UTF8SMTP', 'UTF8SMTPA', 'UTF8SMTPS', 'UTF8SMTPSA'];
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), (esmtp, tls, authenticated, smtputf8) => {
        const keyword = protocolKeyword({ esmtp, tls, authenticated, smtputf8 });
        expect(registered).toContain(keyword);
        if (esmtp) expect(keyword).toBe(`${smtputf8 ? 'UTF8SMTP' : 'ESMTP'}${tls ? 'S' : ''}${authenticated ? 'A' : ''}`);
      }),
    );
  });
});

describe('rfc5322Date', () => {
  const DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([1-9]|[12]\d|3[01]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d [+-]\d{4}$/;
  const zones = ['UTC', 'Europe/Berlin', 'America/St_Johns', 'Asia/Kolkata', 'Pacific/Chatham', 'Pacific/Kiritimati', 'America/Los_Angeles'];

  it('is an RFC 5322 date-time that Date.parse reads back to the same second, in any time zone', () => {
    const saved = process.env.TZ;
    try {
      fc.assert(
        fc.property(fc.constantFrom(...zones), fc.date({ min: new Date('1980-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z') }), (zone, date) => {
          process.env.TZ = zone;
          const text = rfc5322Date(date);
          expect(text).toMatch(DATE);
          expect(Date.parse(text)).toBe(Math.floor(date.getTime() / 1000) * 1000);
        }),
        { numRuns: 500 },
      );
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
