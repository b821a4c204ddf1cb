/**
 * Every built-in rule: a message that makes it fire and one that does not. The base
 * message (lists-helpers.ts ruleInput) is plain, well-formed mail that fires none.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_RULES, compileRules, evaluateRules, parseRulesConfig, type RuleInput } from '../src/rules.js';
import { BASE_HEADERS, RECEIVED, ruleInput } from './lists-helpers.js';

const rules = compileRules(parseRulesConfig());
const HOUR = 3_600_000;

function fired(input: RuleInput, now = RECEIVED): string[] {
  return evaluateRules(rules, input, now).map((h) => h.name);
}

function withHeaders(change: Record<string, string | undefined>, rest: Partial<RuleInput> = {}): RuleInput {
  const headerMap: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...BASE_HEADERS, ...change })) if (value !== undefined) headerMap[name] = value;
  return ruleInput({ headerMap, ...rest });
}

function dateAt(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

describe('built-in rules', () => {
  it('fire on nothing for plain, well-formed mail', () => {
    expect(fired(ruleInput())).toEqual([]);
  });

  it('have SpamAssassin-style names, positive scores and descriptions', () => {
    for (const rule of BUILTIN_RULES) {
      expect(rule.name).toMatch(/^[A-Z0-9_]+$/);
      expect(rule.score).toBeGreaterThan(0);
      expect(rule.describe.length).toBeGreaterThan(5);
    }
  });

  it.each([
    ['MISSING_DATE', 'Date'],
    ['MISSING_MID', 'Message-ID'],
    ['MISSING_FROM', 'From'],
    ['MISSING_SUBJECT', 'Subject'],
    ['MISSING_HEADERS', 'To'],
  ])('%s fires without %s, and not with it (any case)', (rule, header) => {
    expect(fired(withHeaders({ [header]: undefined }))).toContain(rule);
    const lower = withHeaders({ [header]: undefined, [header.toLowerCase()]: BASE_HEADERS[header as keyof typeof BASE_HEADERS] });
    expect(fired(lower)).not.toContain(rule);
  });

  it('INVALID_DATE fires on a date that is not RFC 5322', () => {
    for (const bad of ['yesterday', '2025-07-01T10:00:00Z', 'Tue, 31 Feb 2025 10:00:00 +0000', 'Tue, 01 Jul 2025 25:00:00 +0000', 'Tue, 01 Jul 2025 10:00:00']) {
      expect(fired(withHeaders({ Date: bad })), bad).toContain('INVALID_DATE');
    }
    for (const good of ['1 Jul 2025 10:00 GMT', 'Tue, 1 Jul 25 06:00:00 -0400 (EDT)', 'Tue, 01 Jul 2025 03:00:00 PDT', 'tue, 01 jul 2025 10:00:00 +0000']) {
      const names = fired(withHeaders({ Date: good }));
      expect(names, good).not.toContain('INVALID_DATE');
      expect(names.filter((n) => n.startsWith('DATE_IN')), good).toEqual([]);
    }
  });

  it.each([
    ['DATE_IN_FUTURE_12_24', 13],
    ['DATE_IN_FUTURE_24_48', 30],
    ['DATE_IN_FUTURE_48_96', 50],
    ['DATE_IN_FUTURE_96_XX', 24 * 30],
    ['DATE_IN_PAST_96_XX', -97],
  ])('%s fires for a Date %d hours off, alone', (rule, hours) => {
    const names = fired(withHeaders({ Date: dateAt(RECEIVED + hours * HOUR) }));
    expect(names.filter((n) => n.startsWith('DATE_IN'))).toEqual([rule]);
  });

  it('no date rule fires within 12 hours ahead or 96 hours behind', () => {
    for (const hours of [11, 2, -3, -95]) {
      expect(fired(withHeaders({ Date: dateAt(RECEIVED + hours * HOUR) })).filter((n) => n.startsWith('DATE_IN'))).toEqual([]);
    }
  });

  it('the date rules read the zone offset', () => {
    // 10:00 -1400 is 24:00 UTC, 14 hours after a receipt at 10:05 UTC... minus the 5 minutes
    expect(fired(withHeaders({ Date: 'Tue, 01 Jul 2025 10:00:00 -1400' }))).toContain('DATE_IN_FUTURE_12_24');
    expect(fired(withHeaders({ Date: 'Tue, 01 Jul 2025 23:00:00 +1400' }))).not.toContain('DATE_IN_FUTURE_12_24');
  });

  it('SUBJ_ALL_CAPS fires on an all-capitals subject of several words', () => {
    expect(fired(withHeaders({}, { subject: 'FREE MONEY FOR YOU NOW' }))).toContain('SUBJ_ALL_CAPS');
    expect(fired(withHeaders({}, { subject: 'Re: GRÜSSE AUS MÜNCHEN!' }))).toContain('SUBJ_ALL_CAPS');
    for (const subject of ['Free money for you', 'IBM', 'FREEMONEYFORYOU', 'Re: NASA and ESA', '12345 67890 !!!', '会议 通知 明天 上午 十点']) {
      expect(fired(withHeaders({}, { subject })), subject).not.toContain('SUBJ_ALL_CAPS');
    }
  });

  it('MIME_HTML_ONLY fires for a text/html message, not multipart/alternative', () => {
    const html = '<p>Hello there, see the offer below.</p>';
    expect(fired(withHeaders({ 'Content-Type': 'text/html; charset=utf-8' }, { html, text: 'Hello there, see the offer below.' }))).toContain('MIME_HTML_ONLY');
    expect(fired(withHeaders({ 'Content-Type': 'multipart/alternative; boundary=x' }, { html, text: 'Hello there' }))).not.toContain('MIME_HTML_ONLY');
  });

  it('HTML_IMAGE_ONLY_xx fires once, by the length of an HTML source with images (as SpamAssassin measures it)', () => {
    const image = '<img src="http://spam.example/a.png">';
    const words = (n: number): string => 'x'.repeat(n);
    // SpamAssassin's HTML.pm counts the raw HTML (markup, comments and all): a short HTML
    // part with images is the signal, not a long newsletter with little visible text.
    const cases: Array<[number, string]> = [
      [10, 'HTML_IMAGE_ONLY_04'],
      [500, 'HTML_IMAGE_ONLY_08'],
      [1500, 'HTML_IMAGE_ONLY_16'],
      [3000, 'HTML_IMAGE_ONLY_32'],
    ];
    for (const [n, rule] of cases) {
      const html = `${image}<!-- ${words(n)} -->`;
      expect(fired(withHeaders({}, { html })).filter((r) => r.startsWith('HTML_IMAGE_ONLY')), String(n)).toEqual([rule]);
    }
    // bucket edges: (0, 400], (400, 800]
    const sized = (length: number) => image + words(length - image.length);
    expect(fired(withHeaders({}, { html: sized(400) })).filter((r) => r.startsWith('HTML_IMAGE_ONLY'))).toEqual(['HTML_IMAGE_ONLY_04']);
    expect(fired(withHeaders({}, { html: sized(401) })).filter((r) => r.startsWith('HTML_IMAGE_ONLY'))).toEqual(['HTML_IMAGE_ONLY_08']);
    expect(fired(withHeaders({}, { html: `<p>${words(10)}</p>` })).filter((r) => r.startsWith('HTML_IMAGE'))).toEqual([]);
    // a newsletter: sixty images and little visible text, but 20 KB of HTML
    const newsletter = `<table>${`<tr><td>${image}</td><td style="font:10px arial">x</td></tr>`.repeat(60)}${words(15_000)}</table>`;
    expect(fired(withHeaders({}, { html: newsletter })).filter((r) => r.startsWith('HTML_IMAGE'))).toEqual([]);
  });

  it('EMPTY_MESSAGE fires with no text, no visible HTML and no attachment', () => {
    expect(fired(withHeaders({}, { text: ' \r\n ', html: '<html><body> &nbsp; </body></html>' }))).toContain('EMPTY_MESSAGE');
    expect(fired(withHeaders({}, { text: '' }))).toContain('EMPTY_MESSAGE');
    expect(fired(withHeaders({}, { text: '', attachments: [{ filename: 'a.pdf', mimeType: 'application/pdf', size: 10 }] }))).not.toContain('EMPTY_MESSAGE');
    expect(fired(withHeaders({}, { text: '', html: '<img src="cid:x">' }))).not.toContain('EMPTY_MESSAGE');
    expect(fired(withHeaders({}, { text: '', truncated: true }))).not.toContain('EMPTY_MESSAGE');
  });

  it('MIME_BAD_EXTENSION fires on programs and scripts, MIME_DOUBLE_BAD_EXTENSION on disguised ones', () => {
    const attach = (filename: string, mimeType = 'application/octet-stream'): RuleInput => withHeaders({}, { attachments: [{ filename, mimeType, size: 1000 }] });
    for (const name of ['setup.exe', 'photo.SCR', 'a.pif', 'run.bat', 'run.cmd', 'x.com', 'invoice.js', 'a.vbs', 'app.jar', 'Invoice.exe. .', 'evil.hta', 'link.lnk']) {
      expect(fired(attach(name)), name).toContain('MIME_BAD_EXTENSION');
      expect(fired(attach(name)), name).not.toContain('MIME_DOUBLE_BAD_EXTENSION');
    }
    expect(fired(attach('noname', 'application/x-msdownload'))).toContain('MIME_BAD_EXTENSION');
    const disguised = fired(attach('invoice.pdf.exe'));
    expect(disguised).toContain('MIME_BAD_EXTENSION');
    expect(disguised).toContain('MIME_DOUBLE_BAD_EXTENSION');
    for (const name of ['report.pdf', 'photo.jpeg', 'exe', 'notes.txt', 'archive.zip', 'my.exe.pdf', '']) {
      expect(fired(attach(name)).filter((r) => r.startsWith('MIME_')), name).toEqual([]);
    }
  });

  it('SPOOF_DISPLAY_NAME fires when the display name shows another address', () => {
    expect(fired(withHeaders({ From: '"ceo@example.com" <attacker@evil.example>' }))).toContain('SPOOF_DISPLAY_NAME');
    expect(fired(withHeaders({ From: 'PayPal service@paypal.com <x@evil.example>' }))).toContain('SPOOF_DISPLAY_NAME');
    for (const from of ['"ann@example.com" <Ann@Example.com>', 'Ann Example <ann@example.com>', 'ann@example.com', 'ann@example.com (Ann)', '"@ann" <ann@example.com>']) {
      expect(fired(withHeaders({ From: from })), from).not.toContain('SPOOF_DISPLAY_NAME');
    }
  });

  it('FREEMAIL_FORGED_REPLYTO fires for a freemail Reply-To on mail from elsewhere', () => {
    expect(fired(withHeaders({ 'Reply-To': 'Billing <billing.dept@gmail.com>' }))).toContain('FREEMAIL_FORGED_REPLYTO');
    expect(fired(withHeaders({ 'Reply-To': 'someone@yahoo.co.uk' }))).toContain('FREEMAIL_FORGED_REPLYTO');
    expect(fired(withHeaders({ From: 'Ann <ann@gmail.com>', 'Reply-To': 'ann.other@gmail.com' }))).not.toContain('FREEMAIL_FORGED_REPLYTO');
    expect(fired(withHeaders({ 'Reply-To': 'list@lists.example.org' }))).not.toContain('FREEMAIL_FORGED_REPLYTO');
    expect(fired(withHeaders({ 'Reply-To': 'x@mail.yahoo.example' }))).not.toContain('FREEMAIL_FORGED_REPLYTO');
    // an admin's own freemail provider
    const local = compileRules(parseRulesConfig({ freemailDomains: ['Freemail.Example'] }));
    expect(evaluateRules(local, withHeaders({ 'Reply-To': 'x@freemail.example' }), RECEIVED).map((h) => h.name)).toContain('FREEMAIL_FORGED_REPLYTO');
  });

  it('REPLYTO_WITHOUT_TO_CC fires with a Reply-To and neither To nor Cc', () => {
    expect(fired(withHeaders({ To: undefined, 'Reply-To': 'a@example.com' }))).toContain('REPLYTO_WITHOUT_TO_CC');
    expect(fired(withHeaders({ To: undefined, Cc: 'c@example.com', 'Reply-To': 'a@example.com' }))).not.toContain('REPLYTO_WITHOUT_TO_CC');
    expect(fired(withHeaders({ 'Reply-To': 'a@example.com' }))).not.toContain('REPLYTO_WITHOUT_TO_CC');
  });

  it('report their score and description', () => {
    const hits = evaluateRules(rules, withHeaders({ Date: undefined }), RECEIVED);
    expect(hits).toEqual([{ name: 'MISSING_DATE', score: 1.4, describe: 'Missing Date: header' }]);
  });
});
