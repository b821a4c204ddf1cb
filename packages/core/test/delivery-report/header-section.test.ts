/**
 * What a report returns of the original: its header fields only. A sender can make the
 * gateway send a report to whoever it names as sender (NOTIFY=SUCCESS, a bounce), so
 * nothing past the fields may ride along (an adversarial run put 64 KiB of spam
 * text after a Subject: line without an empty line and had it relayed).
 */
import { describe, expect, it } from 'vitest';
import { Message, readHeaderSection } from '../../src/index.js';

const message = (text: string) => new Message({ kind: 'memory', chunks: [Buffer.from(text, 'latin1')] }, Buffer.byteLength(text, 'latin1'));

describe('readHeaderSection', () => {
  it('stops at the empty line', async () => {
    expect(await readHeaderSection(message('Subject: hi\r\nTo: <b@x.test>\r\n\r\nbody\r\n'))).toBe('Subject: hi\r\nTo: <b@x.test>');
  });

  it('stops at the first line that is neither a field nor a continuation, like Postfix cleanup', async () => {
    const spam = '<p>BUY CHEAP PILLS http://spam.test/</p>\r\n'.repeat(3000);
    expect(await readHeaderSection(message(`Subject: nohdrsep\r\n\tfolded\r\n${spam}`))).toBe('Subject: nohdrsep\r\n\tfolded');
    expect(await readHeaderSection(message(' starts with a space\r\nSubject: x\r\n\r\n'))).toBe('');
  });

  it('returns whole lines only when the fields go past 64 KiB', async () => {
    const fields = `X-Filler: ${'y'.repeat(90)}\r\n`.repeat(800); // 80 800 bytes
    const head = await readHeaderSection(message(`${fields}\r\nbody\r\n`));
    expect(head.length).toBeLessThanOrEqual(64 * 1024);
    expect(head.split('\r\n').every((line) => line === `X-Filler: ${'y'.repeat(90)}`)).toBe(true);
  });
});
