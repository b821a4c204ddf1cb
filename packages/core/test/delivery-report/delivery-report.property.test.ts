/**
 * Property tests of the delivery report builder (RFC 3464, RFC 6522), for every reason
 * (failed, expired, delayed, relayed, delivered) and with the original message read from
 * a stored file or from the core's Message. Its input mixes strings the
 * client chose (addresses, ENVID and ORCPT as the core's parsers decode them, the
 * original header section) and strings the next hop chose (replies, host names): any of
 * them may hold CR, LF, NUL, U+010A/U+010D (which latin1 would turn into LF/CR), lone
 * surrogates or header-looking text. Whatever they hold, the report is CRLF-only, has
 * exactly the header fields we write, parses as MIME with postal-mime (the independent
 * parser), carries one delivery-status group per recipient with its fields intact, and
 * returns the original header section (or, for RET=FULL, the message) byte for byte.
 */
import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeliveryReport, encodeXtext, Message, parseEnvid, parseOrcpt, type DeliveryReportInput, type OriginalRecipient, type ReportedRecipient } from '../../src/index.js';
import { originalRecipientField } from '../../src/delivery-report.js';

let scratch = '';
let count = 0;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'mg-report-prop-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Text from a client or a next hop. */
const hostile = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.string16bits({ maxLength: 12 }),
  fc
    .array(fc.constantFrom('a', '@', ' ', '\r', '\n', '\r\n', '\0', '\t', '\x7f', '\x85', '\u010a', '\u010d', '\u2028', '\ud800', 'é', '"', ';', ':', 'X-Injected: 1', '\r\n\r\n--x', 'Action: delivered', '--'), { maxLength: 12 })
    .map((p) => p.join('')),
);
/** A reply as the SMTP client keeps it (oneLine: one line, blanks squeezed, at most 1000 characters), or a local error. */
const diagnostic = fc.oneof(
  fc.tuple(fc.constantFrom('550 5.1.1 ', '451 4.7.1 ', '552 ', '250 2.0.0 ', ''), hostile).map(([code, text]) => code + text),
  hostile,
);
const envid = fc.option(hostile.map(encodeXtext).map((x) => parseEnvid(x)), { nil: undefined }).map((e) => (typeof e === 'string' ? e : undefined));
const orcpt: fc.Arbitrary<OriginalRecipient | undefined> = fc
  .tuple(fc.constantFrom('rfc822', 'RFC822', 'utf-8', 'x-type'), hostile, fc.boolean())
  .map(([type, address, encode]) => parseOrcpt(`${type};${encode ? encodeXtext(address) : address}`))
  .map((o) => ('address' in o ? o : undefined));

const recipient: fc.Arbitrary<ReportedRecipient> = fc
  .record({
    address: hostile,
    diagnostic,
    status: fc.stringMatching(/^[245]\.\d{1,3}\.\d{1,3}$/),
    remoteMta: fc.option(hostile, { nil: undefined }),
    willRetryUntil: fc.option(fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01') }), { nil: undefined }),
    orcpt,
  })
  .map(({ remoteMta, willRetryUntil, orcpt: o, ...r }) => ({
    ...r,
    ...(remoteMta !== undefined ? { remoteMta } : {}),
    ...(willRetryUntil !== undefined ? { willRetryUntil } : {}),
    ...(o !== undefined ? { orcpt: o } : {}),
  }));

/** A stored message: CRLF lines (the DATA decoder allows no other), header values with 8-bit bytes, folded lines. */
const headerLine = fc
  .tuple(fc.constantFrom('Subject', 'From', 'To', 'Received', 'X-Long'), fc.uint8Array({ maxLength: 40 }), fc.boolean())
  .map(([name, value, folded]) => {
    const text = Buffer.from(value.map((b) => (b === 0x0d || b === 0x0a ? 0x20 : b))).toString('latin1');
    return `${name}: ${text}${folded ? '\r\n\tcontinued' : ''}`;
  });
const original = fc
  .tuple(fc.array(headerLine, { maxLength: 6 }), fc.array(fc.constantFrom('body', '--', '.', '', 'From: x', '\xe9\xff'), { maxLength: 6 }))
  .map(([headers, body]) => ({ head: headers.join('\r\n'), whole: `${headers.join('\r\n')}\r\n\r\n${body.join('\r\n')}\r\n` }));

const input = fc.record({
  hostname: fc.domain(),
  to: hostile,
  originalSender: hostile,
  arrival: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01') }),
  recipients: fc.array(recipient, { minLength: 1, maxLength: 3 }),
  reason: fc.constantFrom<DeliveryReportInput['reason']>('failed', 'expired', 'delayed', 'relayed', 'delivered'),
  doubleBounce: fc.boolean(),
  envid,
  ret: fc.constantFrom<DeliveryReportInput['ret']>(undefined, 'FULL', 'HDRS'),
  original: fc.option(original, { nil: undefined }),
  /** The original as a stored file, or as the core's Message (in memory). */
  fromMessage: fc.boolean(),
});
type Drawn = typeof input extends fc.Arbitrary<infer T> ? T : never;

async function build(d: Drawn): Promise<Buffer> {
  const emlPath = join(scratch, `m${count++}.eml`);
  const bytes = Buffer.from(d.original?.whole ?? '', 'latin1');
  if (d.original && !d.fromMessage) await writeFile(emlPath, bytes);
  // no original: a missing file, so no header section to return
  const original = d.fromMessage && d.original ? new Message({ kind: 'memory', chunks: [bytes] }, bytes.length) : emlPath;
  const { original: _o, fromMessage: _m, envid: e, ret, ...rest } = d;
  return buildDeliveryReport({ ...rest, queueId: 'Q0000001', reportId: '0000000B1234ABCD', original, ...(e !== undefined ? { envid: e } : {}), ...(ret ? { ret } : {}) });
}

/** No control characters: what a field value built from a client's string must be. */
const NO_CONTROL = /^[^\p{Cc}]*$/u;
/** A client's string as the report shows it: controls as "?", written as UTF-8 (a lone surrogate becomes U+FFFD). */
const oneField = (text: string): string => Buffer.from(text.replace(/\p{Cc}/gu, '?'), 'utf8').toString('utf8');

/** The body parts of the report built from `d`, split at its boundary (a deliberately simple reading, separate from postal-mime's). */
async function parts(d: Drawn, encoding: 'utf8' | 'latin1'): Promise<string[]> {
  const dsn = (await build(d)).toString(encoding);
  const boundary = /boundary="([^"]+)"/.exec(dsn)![1]!;
  const pieces = dsn.slice(dsn.indexOf('\r\n\r\n') + 4).split(`\r\n--${boundary}`);
  expect(pieces.at(-1)).toBe('--\r\n');
  return pieces.slice(1, -1).map((p) => p.replace(/^\r\n/, ''));
}

describe('buildDeliveryReport', () => {
  it('CRLF only; exactly our header fields; postal-mime reads a multipart/report with the three parts', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (d) => {
        const out = await build(d);
        for (let i = 0; i < out.length; i++) {
          if (out[i] === 0x0a) expect(out[i - 1]).toBe(0x0d);
          if (out[i] === 0x0d) expect(out[i + 1]).toBe(0x0a);
        }
        const text = out.toString('latin1');
        const head = text.slice(0, text.indexOf('\r\n\r\n'));
        expect(head.split('\r\n').filter((l) => !l.startsWith('\t')).map((l) => l.slice(0, l.indexOf(':')))).toEqual([
          'From', 'To', 'Subject', 'Date', 'Message-ID', 'Auto-Submitted', 'MIME-Version', 'Content-Type',
        ]);
        expect(out.toString('utf8')).toContain(`\r\nTo: <${oneField(d.to)}>\r\n`);
        const mail = await PostalMime.parse(out, { forceRfc822Attachments: true });
        expect(mail.headers.map((h) => h.key)).toEqual(['from', 'to', 'subject', 'date', 'message-id', 'auto-submitted', 'mime-version', 'content-type']);
        expect(mail.from?.address).toBe(`MAILER-DAEMON@${d.hostname}`);
        expect(mail.messageId).toBe(`<0000000B1234ABCD@${d.hostname}>`);
        expect(mail.headers.find((h) => h.key === 'content-type')!.value).toMatch(/^multipart\/report; report-type=delivery-status;\s+boundary="[^"]+"$/);
        expect(mail.text).toContain(`This is the mail system at host ${d.hostname}.`);
        const returned = d.ret === 'FULL' && (d.reason === 'failed' || d.reason === 'expired') && d.original ? 'message/rfc822' : 'text/rfc822-headers';
        expect(mail.attachments.map((a) => a.mimeType)).toEqual(['message/delivery-status', returned]);
      }),
      { numRuns: 200 },
    );
  });

  it('one delivery-status group per recipient, every value of one line, no control characters, the client strings kept otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (d) => {
        const [notice, status] = (await parts(d, 'utf8')) as [string, string];
        const [perMessage, ...groups] = status.slice(status.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, '').split('\r\n\r\n');
        const fields = (group: string) => new Map(group.split('\r\n').map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as const));
        const message = fields(perMessage!);
        expect([...message.keys()]).toEqual([...(d.envid !== undefined ? ['Original-Envelope-Id'] : []), 'Reporting-MTA', 'X-Mailgate-Queue-ID', 'Arrival-Date']);
        if (d.envid !== undefined) expect(message.get('Original-Envelope-Id')).toBe(d.envid);
        expect(groups).toHaveLength(d.recipients.length);
        const action = d.reason === 'expired' ? 'failed' : d.reason;
        d.recipients.forEach((r, i) => {
          const f = fields(groups[i]!);
          for (const value of f.values()) expect(value).toMatch(NO_CONTROL);
          expect(f.get('Final-Recipient')).toBe(`rfc822; ${oneField(r.address)}`);
          expect(f.get('Action')).toBe(action);
          expect(f.get('Status')).toBe(r.status);
          expect(f.get('Diagnostic-Code')).toMatch(/^(smtp|x-mailgate); /);
          expect(f.get('Diagnostic-Code')!.replace(/^\S+ /, '')).toBe(oneField(r.diagnostic));
          expect(f.get('Remote-MTA')).toBe(r.remoteMta ? `dns; ${oneField(r.remoteMta)}` : undefined);
          expect(f.get('Original-Recipient')).toBe(r.orcpt ? originalRecipientField(r.orcpt) : undefined);
          if (r.orcpt) expect(f.get('Original-Recipient')).toMatch(/^[\x21-\x7e]+; [\x20-\x7e]+$/);
          // each recipient's line in the notice, too
          expect(notice.split('\r\n')).toContain(`<${oneField(r.address)}>: ${oneField(r.diagnostic)}`);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('returns the original header section, or with RET=FULL on a failure the whole message, byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (d) => {
        const last = (await parts(d, 'latin1')).at(-1)!;
        const content = last.slice(last.indexOf('\r\n\r\n') + 4);
        const full = d.ret === 'FULL' && (d.reason === 'failed' || d.reason === 'expired');
        const expected = !d.original ? '' : full ? d.original.whole.slice(0, -2) : d.original.head;
        expect(content).toBe(`${expected}\r\n`);
      }),
      { numRuns: 200 },
    );
  });
});
