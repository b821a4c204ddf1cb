/**
 * The faster line joining of postal-mime's 7bit/8bit decoder (src/postal-mime-join.ts):
 * it is in place (a postal-mime update that moves the decoder makes this fail, not just
 * the scanner slow), and parsed text is byte for byte what the lines say.
 */
import { describe, expect, it } from 'vitest';
import { parseContent } from '../src/content.js';
import { postalMimeJoinReplaced } from '../src/postal-mime-join.js';

describe('postal-mime line joining', () => {
  it('is replaced', () => {
    expect(postalMimeJoinReplaced).toBe(true);
  });

  it('gives the same text: 8bit UTF-8 lines, long parts, multipart', async () => {
    const lines = Array.from({ length: 2_000 }, (_, i) => `${i} Grüße, ½ € — line ${'x'.repeat(i % 70)}`);
    const single = Buffer.from(
      ['From: a@b.example', 'Subject: s', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', ...lines, ''].join('\r\n'),
      'utf8',
    );
    // (postal-mime keeps the part's final line break, as it did before the replacement)
    expect((await parseContent(single)).text).toBe(lines.join('\n') + '\n');

    const multipart = Buffer.from(
      [
        'From: a@b.example',
        'Content-Type: multipart/alternative; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'plain ½',
        'second line',
        '--b',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>html ½</p>',
        '--b--',
        '',
      ].join('\r\n'),
      'utf8',
    );
    const content = await parseContent(multipart);
    expect(content.text).toBe('plain ½\nsecond line\n');
    expect(content.html).toBe('<p>html ½</p>\n');
  });
});
