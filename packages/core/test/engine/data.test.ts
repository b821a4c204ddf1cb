/**
 * DATA: dot-unstuffing, the end of data, 8-bit bytes, SIZE enforced on the bytes that
 * actually arrive, and what the queue sees, compared byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { GO_AHEAD, OK_MAIL, OK_RCPT, QUEUED, envelope, lines, ready, splitReceived, storeGateway } from './helpers.js';

const body = (stored: { bytes: Buffer }): string => splitReceived(stored.bytes).rest.toString('latin1');

describe('DATA', () => {
  it('queues the body exactly, with the dot-stuffing undone', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    const wire = lines('Subject: dots', '', '..leading dot', '...two dots', 'x.', ' .', '..') + '.\r\n';
    expect(await s.send(wire)).toMatch(QUEUED);
    expect(stored).toHaveLength(1);
    expect(body(stored[0]!)).toBe(lines('Subject: dots', '', '.leading dot', '..two dots', 'x.', ' .', '.'));
    expect(s.session.messageCount).toBe(1);
  });

  it('an empty message (.<CRLF> right after 354) is accepted with an empty body', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    expect(await s.send('.\r\n')).toMatch(QUEUED);
    expect(body(stored[0]!)).toBe('');
  });

  it('data ends only at <CRLF>.<CRLF>: dots inside lines and a final line without CRLF are content', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    expect(await s.send('a.\r\nb .\r\n.c\r\n')).toBe('');
    expect(await s.send('.\r')).toBe('');
    expect(await s.send('\n')).toMatch(QUEUED);
    expect(body(stored[0]!)).toBe('a.\r\nb .\r\nc\r\n');
  });

  it('8-bit bytes, NUL and UTF-8 pass through unchanged', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    const raw = Buffer.concat([Buffer.from('Subject: ünïcödé ☃\r\n\r\n'), Buffer.from([0, 1, 0xff, 0xfe, 0x80, 0x0d, 0x0a])]);
    expect(await s.send(Buffer.concat([raw, Buffer.from('.\r\n')]))).toMatch(QUEUED);
    expect(splitReceived(stored[0]!.bytes).rest.equals(raw)).toBe(true);
  });

  it('fed one byte at a time, the same message and replies', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'BYTE' });
    const wire = Buffer.from(envelope('a@b.test', 'x@example.test') + lines('Subject: x', '', '..a', 'b') + '.\r\nQUIT\r\n');
    const out = await s.sendChunks([...wire].map((b) => Buffer.from([b])));
    expect(out).toBe(OK_MAIL + OK_RCPT + GO_AHEAD + '250 2.0.0 OK: queued as BYTE.1\r\n221 2.0.0 mx.test closing connection\r\n');
    expect(body(stored[0]!)).toBe(lines('Subject: x', '', '.a', 'b'));
  });

  it('several messages in one session, each queued once', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'MULTI' });
    for (let i = 1; i <= 3; i++) {
      expect(await s.send(envelope('a@b.test', `u${i}@example.test`) + `n ${i}\r\n.\r\n`)).toBe(
        OK_MAIL + OK_RCPT + GO_AHEAD + `250 2.0.0 OK: queued as MULTI.${i}\r\n`,
      );
    }
    expect(stored.map((m) => [m.txId, m.rcpts, body(m)])).toEqual([
      ['MULTI.1', ['u1@example.test'], 'n 1\r\n'],
      ['MULTI.2', ['u2@example.test'], 'n 2\r\n'],
      ['MULTI.3', ['u3@example.test'], 'n 3\r\n'],
    ]);
    expect(s.session.messageCount).toBe(3);
  });

  it('DATA with an argument is a 501', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA now\r\n')).toBe(
      OK_MAIL + OK_RCPT + '501 5.5.4 Syntax: DATA\r\n',
    );
  });
});

describe('SIZE is enforced on the bytes that arrive (DATA)', () => {
  const limits = { maxMessageSize: 1000 };
  const TOO_BIG = '552 5.3.4 Message size exceeds fixed maximum message size\r\n';

  it('a body of exactly maxMessageSize bytes is accepted', async () => {
    const { gw, stored } = await storeGateway({ limits });
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    const text = 'x'.repeat(998) + '\r\n';
    expect(await s.send(text + '.\r\n')).toMatch(QUEUED);
    expect(stored[0]!.bytes.length).toBeGreaterThan(1000); // the Received header does not count
  });

  it.each([
    ['no SIZE', ''],
    ['a small declared SIZE', ' SIZE=100'],
    ['a truthful SIZE', ' SIZE=1000'],
  ])('a body one byte too big is refused with %s, and the session goes on', async (_what, param) => {
    const { gw, stored } = await storeGateway({ limits });
    const s = await ready(gw);
    expect(await s.send(`MAIL FROM:<a@b.test>${param}\r\nRCPT TO:<x@example.test>\r\nDATA\r\n`)).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
    // 1001 decoded bytes (the stuffed dot does not count), fed in pieces.
    expect(await s.send('..' + 'y'.repeat(500))).toBe('');
    expect(await s.send('z'.repeat(498) + '\r\n')).toBe('');
    expect(await s.send('.\r\nNOOP\r\n')).toBe(TOO_BIG + '250 2.0.0 OK\r\n');
    expect(stored).toHaveLength(0);
    expect(s.session.transaction).toBeUndefined();
    // The next message fits and goes through.
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'small\r\n.\r\n')).toMatch(/354 [^\r]*\r\n250 2\.0\.0 OK: queued/);
    expect(stored).toHaveLength(1);
  });

  it('a huge body is counted, not stored, and the spool stays small', async () => {
    const { gw, stored } = await storeGateway({ limits: { maxMessageSize: 64 * 1024 } });
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    const chunk = Buffer.from(('x'.repeat(998) + '\r\n').repeat(64)); // 64 000 bytes
    for (let i = 0; i < 32; i++) expect(await s.send(chunk)).toBe(''); // 2 MB
    expect(await s.send('.\r\n')).toBe(TOO_BIG);
    expect(stored).toHaveLength(0);
  });
});
