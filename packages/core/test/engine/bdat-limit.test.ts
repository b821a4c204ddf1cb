/**
 * BDAT over the size limit, like Postfix: the chunk that takes the message over
 * `maxMessageSize` is answered `552 5.3.4` (not 250, with the 552 only at LAST),
 * which ends the transaction. Every chunk is still read to its declared end, so the
 * stream stays in sync: the bytes of the over-limit chunk and of the chunks the
 * client pipelined after it are data, never commands (a smuggling hazard otherwise).
 * Those later chunks get the same 552, until LAST, MAIL, RSET or EHLO.
 */
import { describe, expect, it } from 'vitest';
import type { TransactionOutcome } from '../../src/index.js';
import { OK_MAIL, OK_RCPT, lines, makeGateway, plugin, ready, splitAt, splitReceived, storePlugin } from './helpers.js';

const TOO_BIG = '552 5.3.4 Message size exceeds fixed maximum message size\r\n';
const OK = '250 2.0.0 OK\r\n';
const ENVELOPE = lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>');
const octets = (n: number): string => `250 2.0.0 ${n} octets received\r\n`;
const bdat = (chunk: string, last = false): string => `BDAT ${Buffer.byteLength(chunk)}${last ? ' LAST' : ''}\r\n${chunk}`;
/** What a smuggler would hide in a chunk: a whole second transaction, as commands. */
const SMUGGLED = lines('RSET', 'MAIL FROM:<evil@attacker.test>', 'RCPT TO:<victim@example.test>', 'DATA', 'Subject: smuggled', '', 'pwned', '.', 'QUIT');

async function limited(maxMessageSize = 100, extra: Record<string, unknown> = {}) {
  const gw = makeGateway({ limits: { maxMessageSize, ...extra } as never });
  const store = storePlugin('store', { domains: ['example.test'] });
  await gw.use(store.plugin);
  const outcomes: TransactionOutcome[] = [];
  const commands: string[] = [];
  await gw.use(
    plugin('spy', ({ tap }) => {
      tap('reset', (_s, tx) => void outcomes.push(tx.outcome!));
      tap('mail', (_s, tx) => void commands.push(`MAIL ${tx.senderText}`));
      tap('rcpt', (_s, _tx, r) => void commands.push(`RCPT ${r.text}`));
    }),
  );
  const s = await ready(gw, { id: 'L' });
  return { s, stored: store.stored, outcomes, commands };
}

describe('BDAT: the chunk that goes over the limit', () => {
  it('is answered 552 5.3.4 at once and ends the transaction (MAIL needs no RSET)', async () => {
    const { s, stored, outcomes } = await limited(100);
    expect(await s.send(ENVELOPE)).toBe(OK_MAIL + OK_RCPT);
    expect(await s.send(bdat('a'.repeat(60)))).toBe(octets(60));
    expect(await s.send(bdat('b'.repeat(41)))).toBe(TOO_BIG);
    expect(s.session.transaction).toBeUndefined();
    expect(outcomes).toEqual([{ end: 'message', reply: { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' }, queued: false }]);
    // A new transaction right away, and it is received normally.
    expect(await s.send(ENVELOPE + bdat('small\r\n', true))).toMatch(new RegExp(`^${OK_MAIL}${OK_RCPT}250 2\\.0\\.0 OK: queued as L\\.2\\r\\n$`));
    expect(stored).toHaveLength(1);
    expect(splitReceived(stored[0]!.bytes).rest.toString()).toBe('small\r\n');
  });

  it('exactly the limit across chunks is accepted; one byte more is not', async () => {
    const { s, stored } = await limited(100);
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(60)) + bdat('b'.repeat(40), true))).toMatch(new RegExp(`^${octets(60)}250 2\\.0\\.0 OK: queued`));
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(60)) + bdat('b'.repeat(41), true))).toBe(octets(60) + TOO_BIG);
    expect(stored).toHaveLength(1);
  });

  it('a first chunk already over the limit: 552, nothing stored, the session goes on', async () => {
    const { s, stored } = await limited(100);
    await s.send(ENVELOPE);
    expect(await s.send(bdat('x'.repeat(101)) + 'NOOP\r\n')).toBe(TOO_BIG + OK);
    expect(stored).toHaveLength(0);
    expect(s.closed).toBe(false);
  });

  it('its bytes are data, never commands, even when they spell a whole transaction', async () => {
    const { s, stored, commands } = await limited(100);
    await s.send(ENVELOPE);
    const chunk = 'p'.repeat(90) + SMUGGLED; // over the limit, with the commands after the limit is crossed
    expect(await s.send(bdat(chunk) + 'NOOP\r\n')).toBe(TOO_BIG + OK);
    expect(commands).toEqual(['MAIL a@b.test', 'RCPT x@example.test']);
    expect(stored).toHaveLength(0);
    expect(s.closed).toBe(false);
  });

  it('split anywhere (down to single bytes) the replies are the same', async () => {
    const wire = Buffer.from(ENVELOPE + bdat('a'.repeat(60)) + bdat('b'.repeat(30) + SMUGGLED) + bdat(SMUGGLED, true) + 'NOOP\r\n');
    const expected = OK_MAIL + OK_RCPT + octets(60) + TOO_BIG + TOO_BIG + OK;
    for (const cuts of [[], [70], [95, 96, 97], [wire.length - 5], Array.from({ length: wire.length - 1 }, (_, i) => i + 1)]) {
      const { s, stored, commands } = await limited(100);
      expect(await s.sendChunks(splitAt(wire, cuts))).toBe(expected);
      expect(stored).toHaveLength(0);
      expect(commands).toEqual(['MAIL a@b.test', 'RCPT x@example.test']);
    }
  });

  it('under bareLineEndings: normalize, a chunk that grows over the limit (LF → CRLF) is refused on that chunk', async () => {
    // 12 raw bytes, 18 after normalization: fits. Then 4 raw bytes, 6 normalized: 24 > 20.
    const gw = makeGateway({ limits: { maxMessageSize: 20 }, smtp: { bareLineEndings: 'normalize' } });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const t = await ready(gw);
    await t.send(ENVELOPE);
    expect(await t.send(bdat('a\nb\nc\nd\ne\nf\n'))).toBe(octets(18));
    expect(await t.send(bdat('g\nh\n') + 'NOOP\r\n')).toBe(TOO_BIG + OK);
    expect(t.session.transaction).toBeUndefined();
    expect(store.stored).toHaveLength(0);
  });
});

describe('BDAT: chunks pipelined after the over-limit one', () => {
  it('are read to their declared end and answered 552 each; after LAST, BDAT is out of sequence again', async () => {
    const { s, stored, commands } = await limited(100);
    await s.send(ENVELOPE);
    const out = await s.send(bdat('a'.repeat(101)) + bdat(SMUGGLED) + bdat('x'.repeat(500)) + bdat(SMUGGLED, true) + bdat(SMUGGLED) + 'NOOP\r\n');
    expect(out).toBe(TOO_BIG + TOO_BIG + TOO_BIG + TOO_BIG + '503 5.5.1 Need MAIL command\r\n' + OK);
    expect(commands).toEqual(['MAIL a@b.test', 'RCPT x@example.test']);
    expect(stored).toHaveLength(0);
    expect(s.closed).toBe(false);
  });

  it('BDAT 0 LAST after the over-limit chunk: 552, and the discarding ends', async () => {
    const { s } = await limited(100);
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(150)) + 'BDAT 0 LAST\r\nBDAT 4\r\nNOOP')).toBe(TOO_BIG + TOO_BIG + '503 5.5.1 Need MAIL command\r\n');
  });

  it.each([
    ['RSET', OK],
    ['EHLO c.test', '250-mx.test Hello'],
  ])('%s ends the discarding: a later BDAT is 503, its bytes still consumed', async (command, reply) => {
    const { s } = await limited(100);
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(150)))).toBe(TOO_BIG);
    expect(await s.send(`${command}\r\n`)).toMatch(new RegExp(`^${reply}`));
    expect(await s.send(bdat(SMUGGLED) + 'NOOP\r\n')).toBe('503 5.5.1 Need MAIL command\r\n' + OK);
  });

  it('MAIL ends the discarding: the new transaction takes chunks normally', async () => {
    const { s, stored } = await limited(100);
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(150)))).toBe(TOO_BIG);
    expect(await s.send(ENVELOPE + bdat('one ') + bdat('two\r\n', true))).toMatch(new RegExp(`^${OK_MAIL}${OK_RCPT}${octets(4)}250 2\\.0\\.0 OK: queued`));
    expect(splitReceived(stored[0]!.bytes).rest.toString()).toBe('one two\r\n');
  });

  it('count as one error, not one per discarded chunk (maxErrors is not reached by a pipeline)', async () => {
    const { s } = await limited(100, { maxErrors: 3 });
    await s.send(ENVELOPE);
    const out = await s.send(bdat('a'.repeat(101)) + bdat('b').repeat(6) + 'NOOP\r\n');
    expect(out).toBe(TOO_BIG.repeat(7) + OK);
    expect(s.closed).toBe(false);
    expect(s.session.errorCount).toBe(1);
  });

  it('do not go on forever: they share the message\'s dataTimeout', async () => {
    const { s } = await limited(100, { dataTimeout: '200ms' });
    await s.send(ENVELOPE);
    expect(await s.send(bdat('a'.repeat(101)))).toBe(TOO_BIG);
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.send(bdat('b'))).toBe('421 4.4.2 mx.test Error: timeout exceeded while receiving data\r\n');
    expect(s.closed).toBe(true);
  });

  it('DATA is not a way around it: the over-limit DATA still gets its 552 after the final dot', async () => {
    const { s, stored } = await limited(100);
    expect(await s.send(ENVELOPE + `DATA\r\n${'a'.repeat(120)}\r\n.\r\n`)).toBe(OK_MAIL + OK_RCPT + '354 End data with <CR><LF>.<CR><LF>\r\n' + TOO_BIG);
    expect(stored).toHaveLength(0);
  });
});
