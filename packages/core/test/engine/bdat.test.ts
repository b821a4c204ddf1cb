/**
 * BDAT (RFC 3030 CHUNKING): length-delimited chunks, LAST, BDAT 0 LAST, mixing with
 * DATA, refused chunks whose bytes are still consumed (never read as commands), bad
 * syntax (501 and close: the chunk end is unknowable), SIZE on the actual bytes, and
 * bare line endings.
 */
import { describe, expect, it } from 'vitest';
import { OK_MAIL, OK_RCPT, QUEUED, lines, makeGateway, ready, splitAt, splitReceived, storeGateway } from './helpers.js';

const ENVELOPE = lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>');
const body = (m: { bytes: Buffer }): string => splitReceived(m.bytes).rest.toString('latin1');
const octets = (n: number): string => `250 2.0.0 ${n} octets received\r\n`;
/** A BDAT command with its chunk, the size counted for us. */
const bdat = (chunk: string, last = false): string => `BDAT ${Buffer.byteLength(chunk)}${last ? ' LAST' : ''}\r\n${chunk}`;

describe('BDAT', () => {
  it('two chunks then LAST: the body is the exact concatenation, no dot-unstuffing', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'B' });
    expect(await s.send(ENVELOPE)).toBe(OK_MAIL + OK_RCPT);
    expect(await s.send(bdat('Subject: x\r\n\r\n'))).toBe(octets(14));
    expect(await s.send(bdat('..dot\r\n.\r\nQUIT'))).toBe(octets(28));
    expect(await s.send(bdat('\r\nend\r\n', true))).toBe('250 2.0.0 OK: queued as B.1\r\n');
    expect(stored).toHaveLength(1);
    expect(body(stored[0]!)).toBe('Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\nend\r\n');
    expect(s.closed).toBe(false);
  });

  it('BDAT 0 LAST ends a chunked message; alone it is an empty message', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(ENVELOPE);
    expect(await s.send('BDAT 4\r\nab\r\n')).toBe(octets(4));
    expect(await s.send('BDAT 0 LAST\r\n')).toMatch(QUEUED);
    expect(body(stored[0]!)).toBe('ab\r\n');
    await s.send(ENVELOPE);
    expect(await s.send('BDAT 0 LAST\r\n')).toMatch(QUEUED);
    expect(body(stored[1]!)).toBe('');
  });

  it('LAST is case-insensitive and a chunk may be fed a byte at a time', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'C' });
    const wire = Buffer.from(ENVELOPE + 'bdat 8 last\r\nhi\r\nyo\r\nNOOP\r\n');
    const out = await s.sendChunks([...wire].map((b) => Buffer.from([b])));
    expect(out).toBe(OK_MAIL + OK_RCPT + '250 2.0.0 OK: queued as C.1\r\n250 2.0.0 OK\r\n');
    expect(body(stored[0]!)).toBe('hi\r\nyo\r\n');
  });

  it('a whole pipelined BDAT exchange in one write, and split anywhere, gives the same replies', async () => {
    const wire = Buffer.from(ENVELOPE + bdat('hello') + bdat(' world\r\n') + 'BDAT 0 LAST\r\nQUIT\r\n');
    const expected = OK_MAIL + OK_RCPT + octets(5) + octets(13) + '250 2.0.0 OK: queued as S.1\r\n221 2.0.0 mx.test closing connection\r\n';
    for (const cuts of [[], [1], [50, 51, 52], [66, 70], [wire.length - 3], [10, 20, 30, 40, 50, 60, 70, 80, 90]]) {
      const { gw, stored } = await storeGateway();
      const s = await ready(gw, { id: 'S' });
      expect(await s.sendChunks(splitAt(wire, cuts))).toBe(expected);
      expect(body(stored[0]!)).toBe('hello world\r\n');
    }
  });

  it('BDAT without MAIL is 503, and its bytes are consumed, never read as commands', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    const chunk = ENVELOPE + 'DATA\r\nQUIT\r\n';
    expect(await s.send(`BDAT ${chunk.length}\r\n${chunk}NOOP\r\n`)).toBe('503 5.5.1 Need MAIL command\r\n250 2.0.0 OK\r\n');
    expect(s.closed).toBe(false);
    expect(s.session.transaction).toBeUndefined();
    expect(stored).toHaveLength(0);
    // Same for a LAST chunk and for BDAT 0.
    expect(await s.send(`BDAT ${chunk.length} LAST\r\n${chunk}BDAT 0 LAST\r\n`)).toBe('503 5.5.1 Need MAIL command\r\n'.repeat(2));
  });

  it('BDAT without RCPT is 503; after only refused RCPTs it is 554; the chunk is consumed either way', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nBDAT 6\r\nQUIT\r\n')).toBe(OK_MAIL + '503 5.5.1 Need RCPT command\r\n');
    expect(await s.send('RCPT TO:<x@elsewhere.test>\r\nBDAT 6 LAST\r\nQUIT\r\n')).toBe(
      '554 5.7.1 <x@elsewhere.test>: Relay access denied\r\n554 5.5.1 No valid recipients\r\n',
    );
    expect(s.closed).toBe(false);
  });

  it('DATA after BDAT is 503 and the chunked message can still be finished', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(ENVELOPE);
    expect(await s.send('BDAT 3\r\nabc')).toBe(octets(3));
    expect(await s.send('DATA\r\n')).toBe('503 5.5.1 DATA not allowed after BDAT\r\n');
    expect(await s.send('BDAT 2 LAST\r\n\r\n')).toMatch(QUEUED);
    expect(body(stored[0]!)).toBe('abc\r\n');
  });

  it.each(['BDAT', 'BDAT x', 'BDAT -1', 'BDAT 5 LASTX', 'BDAT 5 LAST x', 'BDAT 1234567890123456', 'BDAT 0x10', 'BDAT +5'])(
    '%s: 501 and close (where the chunk ends is unknowable)',
    async (command) => {
      const { gw } = await storeGateway();
      const s = await ready(gw);
      await s.send(ENVELOPE);
      expect(await s.send(`${command}\r\nMAIL FROM:<evil@x.test>\r\n`)).toBe('501 5.5.4 Syntax: BDAT size [LAST], closing connection\r\n');
      expect(s.closed).toBe(true);
    },
  );

  it('with CHUNKING off, BDAT is 502 and its bytes are consumed', async () => {
    const gw = makeGateway({ smtp: { chunking: false } });
    const s = await ready(gw);
    expect(await s.send('BDAT 6\r\nQUIT\r\nNOOP\r\n')).toBe('502 5.5.1 BDAT not supported\r\n250 2.0.0 OK\r\n');
    expect(s.closed).toBe(false);
  });

  it('RSET in the middle of a chunked message drops it', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(ENVELOPE);
    expect(await s.send('BDAT 3\r\nabcRSET\r\n')).toBe(octets(3) + '250 2.0.0 OK\r\n');
    expect(await s.send(ENVELOPE + 'BDAT 4 LAST\r\nxy\r\n')).toMatch(/^250 [^\r]*\r\n250 [^\r]*\r\n250 2\.0\.0 OK: queued/);
    expect(stored).toHaveLength(1);
    expect(body(stored[0]!)).toBe('xy\r\n');
  });
});

describe('BDAT and SIZE', () => {
  const TOO_BIG = '552 5.3.4 Message size exceeds fixed maximum message size\r\n';

  it.each([
    ['no SIZE', ''],
    ['a small declared SIZE', ' SIZE=10'],
  ])('chunks adding up to more than maxMessageSize are refused on the chunk that goes over, with %s', async (_w, param) => {
    const { gw, stored } = await storeGateway({ limits: { maxMessageSize: 1000 } });
    const s = await ready(gw);
    await s.send(`MAIL FROM:<a@b.test>${param}\r\nRCPT TO:<x@example.test>\r\n`);
    expect(await s.send(`BDAT 600\r\n${'a'.repeat(600)}`)).toBe(octets(600));
    // The 401 bytes go over: 552 for that chunk; the pipelined LAST is discarded with the same answer.
    const out = await s.send(`BDAT 401\r\n${'b'.repeat(401)}BDAT 0 LAST\r\nNOOP\r\n`);
    expect(out).toBe(TOO_BIG + TOO_BIG + '250 2.0.0 OK\r\n');
    expect(stored).toHaveLength(0);
    expect(s.session.transaction).toBeUndefined();
  });

  it('a single LAST chunk one byte too big is refused; exactly the limit is accepted', async () => {
    const { gw, stored } = await storeGateway({ limits: { maxMessageSize: 1000 } });
    const s = await ready(gw);
    await s.send(ENVELOPE);
    expect(await s.send(`BDAT 1001 LAST\r\n${'a'.repeat(1001)}`)).toBe(TOO_BIG);
    await s.send(ENVELOPE);
    expect(await s.send(`BDAT 1000 LAST\r\n${'a'.repeat(1000)}`)).toMatch(QUEUED);
    expect(stored).toHaveLength(1);
  });
});

describe('BDAT and bare line endings', () => {
  it.each([
    ['bare LF', 'a\nb\r\n'],
    ['bare CR', 'a\rb\r\n'],
    ['bare CR across chunks', ['a\r', 'b\r\n']],
    ['trailing CR at the end of the LAST chunk', 'abc\r'],
    ['trailing CR, then BDAT 0 LAST', ['abc\r', '']],
  ] as Array<[string, string | string[]]>)('%s: 550 5.6.11 under reject', async (_w, chunks) => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(ENVELOPE);
    const list = Array.isArray(chunks) ? chunks : [chunks];
    const out = list.map((c, i) => bdat(c, i === list.length - 1)).join('');
    const replies = await s.send(out);
    expect(replies.split('\r\n').filter(Boolean).at(-1)).toMatch(/^550 5\.6\.11 Message refused: bare <(CR|LF)> in message/);
    expect(stored).toHaveLength(0);
  });

  it.each([
    ['bare LF', ['a\nb\r\n'], 'a\r\nb\r\n'],
    ['bare CR', ['a\rb\r\n'], 'a\r\nb\r\n'],
    ['CR LF split across chunks is one CRLF', ['a\r', '\nb\r\n'], 'a\r\nb\r\n'],
    ['bare CR across chunks', ['a\r', 'b\r\n'], 'a\r\nb\r\n'],
    ['trailing CR at the end of the LAST chunk', ['abc\r'], 'abc\r\n'],
    ['trailing CR, then BDAT 0 LAST', ['abc\r', ''], 'abc\r\n'],
  ])('%s: normalized to CRLF under normalize', async (_w, list, expected) => {
    const { gw, stored } = await storeGateway({ smtp: { bareLineEndings: 'normalize' } });
    const s = await ready(gw);
    await s.send(ENVELOPE);
    const out = list.map((c, i) => bdat(c, i === list.length - 1)).join('');
    expect((await s.send(out)).split('\r\n').filter(Boolean).at(-1)).toMatch(/^250 2\.0\.0 OK: queued/);
    expect(body(stored[0]!)).toBe(expected);
  });
});
