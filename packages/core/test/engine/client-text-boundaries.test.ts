/**
 * Where the client's text meets ours: a message whose first line starts with white
 * space must not continue the Received: header we put on top; a pipelining client
 * that sends more recipients than allowed loses only those, not the session.
 */
import { describe, expect, it } from 'vitest';
import { Message } from '@mailgate/core';
import { envelope, GO_AHEAD, OK_MAIL, OK_RCPT, QUEUED, ready, splitReceived, storeGateway } from './helpers.js';

describe('a body whose first line starts with white space', () => {
  it.each([' by trusted.example with ESMTPSA (authenticated as admin)', '\tfoo'])('%j is body, after an empty line, not part of our Received:', async (first) => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'u@example.test'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    expect(await s.send(`${first}\r\nSubject: x\r\n\r\nhello\r\n.\r\n`)).toMatch(QUEUED);
    const { received, rest } = splitReceived(stored[0]!.bytes);
    expect(received).not.toContain('trusted.example');
    expect(rest.toString('latin1')).toBe(`\r\n${first}\r\nSubject: x\r\n\r\nhello\r\n`);
    // what a reader of the stored header section sees: our Received: and nothing else
    expect(stored[0]!.headers.map((h) => h.name)).toEqual(['Received']);
    expect(stored[0]!.bytesAgain).toEqual(stored[0]!.bytes);
  });

  it('an ordinary message is stored without the extra line', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'u@example.test'));
    expect(await s.send('Subject: x\r\n\r\nhello\r\n.\r\n')).toMatch(QUEUED);
    expect(splitReceived(stored[0]!.bytes).rest.toString('latin1')).toBe('Subject: x\r\n\r\nhello\r\n');
  });

  it('removeHeaders() finds no fields behind the separator (they are body lines there)', async () => {
    const m = new Message({ kind: 'memory', chunks: [Buffer.from(' x\r\nX-Spam-Flag: YES\r\nSubject: hi\r\n\r\nbody\r\n')] }, 40, { bodyStartsWithWhitespace: true });
    m.prependRawHeader('Received', 'by mx.test; Thu, 26 Nov 2026 10:00:00 +0000');
    expect(await m.removeHeaders((name) => name.toLowerCase().startsWith('x-spam'))).toBe(0);
    expect((await m.toBuffer()).toString()).toContain('\r\n\r\n x\r\nX-Spam-Flag: YES\r\nSubject: hi\r\n');
    expect((await m.headers()).map((h) => h.name)).toEqual(['Received']);
  });

  it('a Message without added headers is left alone', async () => {
    const m = new Message({ kind: 'memory', chunks: [Buffer.from(' x\r\n')] }, 4, { bodyStartsWithWhitespace: true });
    expect((await m.toBuffer()).toString()).toBe(' x\r\n');
    expect(m.size).toBe(4);
  });
});

describe('recipients over maxRecipients', () => {
  it('a pipelined overshoot gets 452 each and the message still goes to the accepted ones', async () => {
    const { gw, stored } = await storeGateway({ limits: { maxRecipients: 100, maxErrors: 10 } });
    const s = await ready(gw);
    const to = Array.from({ length: 200 }, (_, i) => `u${i}@example.test`);
    const out = await s.send(envelope('a@b.test', ...to));
    expect(out).toBe(OK_MAIL + OK_RCPT.repeat(100) + '452 4.5.3 Too many recipients\r\n'.repeat(100) + GO_AHEAD);
    expect(await s.send('hello\r\n.\r\n')).toMatch(QUEUED);
    expect(stored[0]!.claimed).toHaveLength(100);
    expect(s.closed).toBe(false);
  });
});

describe('the size of the header section', () => {
  it('header fields past the part plugins parse are refused with 552 5.6.0, and nothing is stored', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'u@example.test'));
    const filler = `X-Filler: ${'x'.repeat(70)}\r\n`.repeat(Math.ceil((256 * 1024) / 82) + 10);
    const out = await s.send(`${filler}Authentication-Results: mx.test; dmarc=pass\r\n\r\nbody\r\n.\r\n`);
    expect(out).toBe('552 5.6.0 Message header section too large (it and the empty line after it must fit in 262144 bytes)\r\n');
    expect(stored).toEqual([]);
    expect(s.closed).toBe(false);
  });

  it('a big header section within the limit and a big body are taken', async () => {
    const { gw, stored } = await storeGateway({ limits: { maxMessageSize: '5MB' } });
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'u@example.test'));
    const head = `X-Filler: ${'x'.repeat(70)}\r\n`.repeat(3000); // about 246 KB
    expect(await s.send(`${head}\r\n${'body line\r\n'.repeat(200_000)}.\r\n`)).toMatch(QUEUED);
    expect(stored).toHaveLength(1);
  });
});
