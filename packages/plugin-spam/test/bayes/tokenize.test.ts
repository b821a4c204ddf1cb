import { describe, expect, it } from 'vitest';
import { tokenize } from '../../src/bayes/index.js';
import { parseContent } from '../../src/content.js';
import { makeContent } from './messages.js';

describe('tokenize', () => {
  it('takes lowercased body words of 3..40 characters, once each, and skip tokens for longer ones', () => {
    const long = 'x'.repeat(57);
    const tokens = tokenize(makeContent({ from: 'a@b.example', text: `Hello, WORLD! hello "quoted" an a-b ${long} end.` }));
    expect(tokens).toContain('hello');
    expect(tokens).toContain('world!');
    expect(tokens).toContain('quoted');
    expect(tokens).toContain('end');
    expect(tokens).not.toContain('an');
    expect(tokens).toContain('a-b');
    expect(tokens).toContain('skip:x 50');
    expect(tokens.filter((t) => t === 'hello')).toHaveLength(1);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('prefixes header tokens with their header and ignores other filters’ verdict headers', () => {
    const tokens = tokenize(
      makeContent({
        subject: 'FREE money!!!',
        from: '"Big Deals" <Promo@Deals.Example.BIZ>',
        extraHeaders: [
          ['To', 'alice@example.org, Bob <bob@example.net>'],
          ['Message-ID', '<123@mailer.example.biz>'],
          ['X-Mailer', 'Mass Mailer 5.2'],
          ['Content-Type', 'text/html; charset="windows-1252"'],
          ['Received', 'from relay.example.biz (relay.example.biz [192.0.2.77]) by mx.example.org'],
          ['X-Spam-Status', 'Yes, score=15.0'],
          ['X-Mailgate-Spam', 'yes'],
        ],
      }),
    );
    expect(tokens).toEqual(
      expect.arrayContaining([
        'subject:free',
        'subject:money!!!',
        'subject:punct:!!!',
        'from:addr:promo@deals.example.biz',
        'from:domain:deals.example.biz',
        'from:name:big',
        'to:domain:example.org',
        'to:domain:example.net',
        'message-id:@mailer.example.biz',
        'x-mailer:mass mailer #.#',
        'content-type:text/html',
        'charset:windows-1252',
        'received:relay.example.biz',
        'received:mx.example.org',
        'received:ip:192.0',
        'received:ip:192.0.2',
        'received:count:1',
        'header:x-mailer',
      ]),
    );
    expect(tokens.some((t) => t.includes('x-spam') || t.includes('x-mailgate') || t.includes('15.0'))).toBe(false);
  });

  it('counts URL hosts and their parent domains down to the registrable domain', () => {
    const tokens = tokenize(
      makeContent({ urls: ['http://a.b.example.co.uk/path?q=1', 'https://192.0.2.5/x'], text: 'see http://a.b.example.co.uk/path?q=1 now' }),
    );
    expect(tokens).toEqual(expect.arrayContaining(['url:a.b.example.co.uk', 'url:b.example.co.uk', 'url:example.co.uk', 'url:ip', 'url:192.0.2.5']));
    expect(tokens).not.toContain('url:co.uk');
    // The URL in the text is not also a word.
    expect(tokens.some((t) => t.includes('path?q'))).toBe(false);
  });

  it('lists attachment types, not attachment content', async () => {
    const raw = new TextEncoder().encode(
      [
        'Subject: invoice',
        'Content-Type: multipart/mixed; boundary="m"',
        '',
        '--m',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--m',
        'Content-Type: application/octet-stream; name="invoice.EXE"',
        'Content-Disposition: attachment; filename="invoice.EXE"',
        '',
        'payloadword payloadword2',
        '--m--',
        '',
      ].join('\r\n'),
    );
    const tokens = tokenize(await parseContent(raw));
    expect(tokens).toEqual(expect.arrayContaining(['attached', 'attach:type:application/octet-stream', 'attach:ext:exe']));
    expect(tokens.some((t) => t.includes('payloadword'))).toBe(false);
  });

  it('is bounded: maxTokens tokens, maxTextChars of text, no line breaks in any token', () => {
    const text = Array.from({ length: 50_000 }, (_, i) => `word${i}`).join(' ');
    expect(tokenize(makeContent({ text }))).toHaveLength(3000);
    expect(tokenize(makeContent({ text }), { maxTokens: 100 })).toHaveLength(100);
    const limited = tokenize(makeContent({ text }), { maxTokens: 100_000, maxTextChars: 1000 });
    expect(limited.length).toBeLessThan(200);
    const odd = tokenize(makeContent({ subject: 'a\r\nb', extraHeaders: [['X-Mailer', 'evil\r\nX-Injected: 1\u0000']], text: 'x\u0000y\u0001zzz' }));
    expect(odd.every((t) => !/[\r\n\u0000]/.test(t))).toBe(true);
  });
});
