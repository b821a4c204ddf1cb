import { describe, expect, it } from 'vitest';
import { MAX_ATTACHMENTS, MAX_HEADER_FIELDS, MAX_URLS, parseContent, type MessageContent } from '../src/content.js';

const CRLF = '\r\n';

/** A message from lines (joined with CRLF), as the bytes a gateway receives. */
function message(...lines: string[]): Uint8Array {
  return new TextEncoder().encode(lines.join(CRLF));
}

/** Bytes from a string whose characters are all below 256 (charset tests need raw 8-bit bytes). */
function latin1(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'latin1'));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function header(content: MessageContent, name: string): string | undefined {
  return content.headers.find((h) => h.name.toLowerCase() === name)?.value;
}

describe('parseContent: structure and encodings', () => {
  it('reads multipart/alternative: text from the plain part, html raw, URLs from both', async () => {
    const content = await parseContent(
      message(
        'From: Ann Example <ann@example.com>',
        'To: bob@example.net',
        'Subject: Quarterly report',
        'X-Folded: first',
        '  second',
        'MIME-Version: 1.0',
        'Content-Type: multipart/alternative; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'See the report at https://reports.example.com/q3?x=1.',
        '--b1',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<html><body><p>See the <a href="https://reports.example.com/q3?x=1&amp;y=2">report</a></p>',
        '<img src="http://img.example.org/logo.png"><a href="/relative">rel</a><a href="mailto:x@example.com">m</a></body></html>',
        '--b1--',
        '',
      ),
    );
    expect(content.subject).toBe('Quarterly report');
    expect(content.from).toBe('Ann Example <ann@example.com>');
    expect(content.headers.map((h) => h.name)).toEqual(['From', 'To', 'Subject', 'X-Folded', 'MIME-Version', 'Content-Type']);
    expect(header(content, 'x-folded')).toMatch(/^first\s+second$/);
    expect(content.text).toContain('See the report at https://reports.example.com/q3?x=1.');
    // The HTML half of the alternative is not rendered into text a second time.
    expect(content.text).not.toContain('<p>');
    expect(content.text.match(/See the/g)).toHaveLength(1);
    expect(content.html).toContain('<a href="https://reports.example.com/q3?x=1&amp;y=2">');
    expect(content.urls).toEqual([
      'https://reports.example.com/q3?x=1',
      'https://reports.example.com/q3?x=1&y=2',
      'http://img.example.org/logo.png',
    ]);
    // each host once, for URI blocklists and Bayes, which do not parse the URLs again
    expect(content.urlHosts).toEqual(['reports.example.com', 'img.example.org']);
    expect(content.attachments).toEqual([]);
    expect(content.truncated).toBe(false);
  });

  it('decodes base64 and quoted-printable bodies', async () => {
    const base64 = await parseContent(
      message(
        'Subject: b64',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('Grüße aus Köln — visit www.example.de today').toString('base64'),
        '',
      ),
    );
    expect(base64.text).toContain('Grüße aus Köln — visit www.example.de today');
    expect(base64.urls).toEqual(['http://www.example.de/']);

    const qp = await parseContent(
      message(
        'Subject: qp',
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        'Caf=E9 cr=E8me, a soft line=',
        ' break and =3D sign',
        '',
      ),
    );
    expect(qp.text).toContain('Café crème, a soft line break and = sign');
  });

  it('decodes 8-bit iso-8859-1, koi8-r and utf-8 bodies by their charset', async () => {
    const iso = await parseContent(
      concat(message('Subject: iso', 'Content-Type: text/plain; charset=iso-8859-1', '', ''), latin1('Gar\xe7on, d\xe9j\xe0 vu\r\n')),
    );
    expect(iso.text).toContain('Garçon, déjà vu');

    // "Привет, мир" in KOI8-R
    const koi = await parseContent(
      concat(message('Subject: koi', 'Content-Type: text/plain; charset="koi8-r"', '', ''), latin1('\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2\r\n')),
    );
    expect(koi.text).toContain('Привет, мир');

    const utf8 = await parseContent(message('Subject: utf8', 'Content-Type: text/plain; charset=utf-8', '', 'Ελληνικά και 日本語', ''));
    expect(utf8.text).toContain('Ελληνικά και 日本語');
  });

  it('decodes RFC 2047 encoded words in the subject, From and other headers', async () => {
    const content = await parseContent(
      message(
        'From: =?utf-8?B?0JjQstCw0L0=?= <ivan@example.ru>',
        'Subject: =?iso-8859-1?Q?R=E9sum=E9_attached?= and =?koi8-r?B?8NLJ18XU?=',
        'X-Note: =?utf-8?Q?caf=C3=A9?=',
        '',
        'body',
        '',
      ),
    );
    expect(content.subject).toBe('Résumé attached and Привет');
    expect(content.from).toBe('Иван <ivan@example.ru>');
    expect(header(content, 'subject')).toBe('Résumé attached and Привет');
    expect(header(content, 'x-note')).toBe('café');
  });

  it('turns an HTML-only message into text (tags removed, entities decoded) and keeps the raw HTML', async () => {
    const content = await parseContent(
      message(
        'Subject: html only',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<html><head><style>p { color: red }</style></head><body>',
        '<p>Fish &amp; chips for &pound;5 &mdash; <b>caf&eacute;</b> &#x263A;</p>',
        "<a href='HTTP://Deals.Example.COM/%7Eoffer'>click</a> <a href=\"&#104;ttp://obfuscated.example.net/\">x</a>",
        '</body></html>',
        '',
      ),
    );
    expect(content.text).toContain('Fish & chips for £5 — café ☺');
    expect(content.text).not.toMatch(/<[a-z]/i);
    expect(content.html).toContain('<b>caf&eacute;</b>');
    expect(content.urls).toContain('http://deals.example.com/%7Eoffer');
    expect(content.urls).toContain('http://obfuscated.example.net/');
    expect(content.urlHosts).toEqual(['deals.example.com', 'obfuscated.example.net']);
  });

  it('renders HTML as a reader sees it: inline tags join words, scripts and styles are dropped', async () => {
    const content = await parseContent(
      message(
        'Subject: tricks',
        'Content-Type: multipart/mixed; boundary="t"',
        '',
        '--t',
        'Content-Type: text/plain',
        '',
        'plain part',
        '--t',
        'Content-Type: text/html',
        '',
        '<style>.x{}</style><script>var hidden = "scriptword";</script><!-- commentword -->',
        '<div>V<b></b>i<font color=red>agra</font></div><p>second&nbsp;line &amp;&#32;more</p><scripture>kept</scripture>',
        '--t--',
        '',
      ),
    );
    expect(content.text).toContain('plain part');
    expect(content.text).toContain('Viagra\nsecond line & more');
    expect(content.text).toContain('kept');
    expect(content.text).not.toMatch(/scriptword|commentword|\.x\{/);
  });

  it('lists attachments with name, type and size, and keeps their content out of the text', async () => {
    const pdf = Buffer.alloc(3000, 7);
    const content = await parseContent(
      message(
        'Subject: files',
        'Content-Type: multipart/mixed; boundary="mix"',
        '',
        '--mix',
        'Content-Type: text/plain',
        '',
        'Please find the files attached.',
        '--mix',
        'Content-Type: application/pdf; name="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="',
        'Content-Disposition: attachment; filename="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="',
        'Content-Transfer-Encoding: base64',
        '',
        pdf.toString('base64'),
        '--mix',
        'Content-Type: text/plain; name="notes.txt"',
        'Content-Disposition: attachment; filename="notes.txt"',
        '',
        'SECRET-ATTACHMENT-WORDS http://in-attachment.example.com/',
        '--mix--',
        '',
      ),
    );
    expect(content.text).toContain('Please find the files attached.');
    expect(content.text).not.toContain('SECRET-ATTACHMENT-WORDS');
    expect(content.urls).toEqual([]);
    expect(content.attachments).toEqual([
      { filename: 'résumé.pdf', mimeType: 'application/pdf', size: 3000 },
      { filename: 'notes.txt', mimeType: 'text/plain', size: expect.any(Number) },
    ]);
  });

  it('skips a leading mbox "From " line', async () => {
    const content = await parseContent(
      message('From spammer@example.com  Thu Aug 22 13:17:22 2002', 'Return-Path: <a@example.com>', 'Subject: hi', '', 'text', ''),
    );
    expect(content.headers.map((h) => h.name)).toEqual(['Return-Path', 'Subject']);
    expect(content.subject).toBe('hi');
  });

  it('extracts URLs: trailing punctuation trimmed, deduplicated, only http(s), at most MAX_URLS', async () => {
    const links = Array.from({ length: 300 }, (_, i) => `http://host${i}.example.com/p`).join(' ');
    const content = await parseContent(
      message(
        'Subject: links',
        '',
        '(see https://a.example.com/x), https://a.example.com/x! ftp://files.example.com/ javascript:alert(1) mailto:x@example.com',
        links,
        '',
      ),
    );
    expect(content.urls[0]).toBe('https://a.example.com/x');
    expect(content.urls.filter((u) => u === 'https://a.example.com/x')).toHaveLength(1);
    expect(content.urls.every((u) => /^https?:\/\//.test(u))).toBe(true);
    expect(content.urls).toHaveLength(MAX_URLS);
    // the hosts of the URLs kept, and only those
    expect(content.urlHosts).toEqual([...new Set(content.urls.map((u) => new URL(u).hostname))]);
  });
});

describe('parseContent: hostile input', () => {
  it('returns something for empty input, a lone From line, and random bytes', async () => {
    for (const raw of [new Uint8Array(0), message('From x  Thu Aug 22 2002'), message('no colon here at all')]) {
      const content = await parseContent(raw);
      expect(content.text).toBeTypeOf('string');
      expect(content.urls).toEqual([]);
    }
    // A fixed pseudo-random sequence, so that a failure can be reproduced.
    let seed = 42;
    for (let round = 0; round < 20; round++) {
      const bytes = new Uint8Array(20_000);
      for (let i = 0; i < bytes.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        bytes[i] = seed >>> 24;
      }
      const content = await parseContent(bytes);
      expect(content.headers.length).toBeLessThanOrEqual(MAX_HEADER_FIELDS);
    }
  });

  it('survives broken MIME: missing boundaries, bad base64, unknown charsets, bogus encodings', async () => {
    const content = await parseContent(
      message(
        'Subject: =?x-no-such-charset?B?!!!notbase64?= still here',
        'Content-Type: multipart/mixed; boundary="never-used"',
        '',
        '--other',
        'Content-Type: text/plain; charset=x-no-such-charset',
        'Content-Transfer-Encoding: base64',
        '',
        '@@@@ not base64 at all ====',
        '--never-used',
        'Content-Type: text/plain; charset=unknown-8bit',
        'Content-Transfer-Encoding: x-uuencode',
        '',
        'plain words survive',
        '',
      ),
    );
    expect(content.subject).toContain('still here');
    expect(content.text).toContain('plain words survive');
  });

  it('survives absurd MIME nesting', async () => {
    const depth = 2000;
    const lines = ['Subject: deep'];
    for (let i = 0; i < depth; i++) lines.push(`Content-Type: multipart/mixed; boundary="d${i}"`, '', `--d${i}`);
    lines.push('Content-Type: text/plain', '', 'the bottom', '');
    const content = await parseContent(message(...lines));
    expect(content.subject).toBe('deep');
    expect(content.text).toBeTypeOf('string');
  });

  it('bounds 100,000 header lines', async () => {
    const lines = ['Subject: many headers'];
    for (let i = 0; i < 100_000; i++) lines.push(`X-H${i}: v`);
    lines.push('', 'body', '');
    const raw = message(...lines);
    const content = await parseContent(raw, { maxBytes: raw.length });
    expect(content.subject).toBe('many headers');
    expect(content.headers).toHaveLength(MAX_HEADER_FIELDS);
    expect(content.text).toContain('body');
  });

  it('parses only the head of a huge message and says so', async () => {
    const line = 'spam spam spam lovely spam http://huge.example.com/ wonderful spam\r\n';
    const head = message('Subject: big', 'Content-Type: text/plain', '', '');
    const body = new TextEncoder().encode(line.repeat(200_000)); // ~13 MB
    const content = await parseContent(concat(head, body));
    expect(content.truncated).toBe(true);
    expect(content.subject).toBe('big');
    expect(content.text.length).toBeLessThanOrEqual(512 * 1024);
    expect(content.urls).toEqual(['http://huge.example.com/']);

    const small = await parseContent(concat(head, body.subarray(0, 1000)), { maxBytes: 100 });
    expect(small.truncated).toBe(true);
    expect(small.text.length).toBeLessThan(100);
  });

  it('handles pathological HTML in linear time', async () => {
    for (const body of ['<a href='.repeat(60_000), '<a '.repeat(150_000), '<!--'.repeat(100_000), '<script'.repeat(60_000), '&#'.repeat(200_000), '<'.repeat(400_000)]) {
      const content = await parseContent(message('Subject: x', 'Content-Type: text/html', '', body));
      expect(content.subject).toBe('x');
      expect(content.html.length).toBeGreaterThan(0);
    }
  });

  it('bounds the attachment list of a message with thousands of parts', async () => {
    const lines = ['Subject: parts', 'Content-Type: multipart/mixed; boundary="p"', ''];
    for (let i = 0; i < 3000; i++) lines.push('--p', `Content-Type: application/octet-stream; name="f${i}.bin"`, '', 'x');
    lines.push('--p--', '');
    const content = await parseContent(message(...lines));
    expect(content.attachments).toHaveLength(MAX_ATTACHMENTS);
  });
});
