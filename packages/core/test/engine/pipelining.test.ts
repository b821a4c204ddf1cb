/**
 * PIPELINING (RFC 2920): a whole group in one write is answered in order, commands
 * after the final dot in the same chunk are processed, and where the bytes are split
 * never changes the replies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accept } from '../../src/index.js';
import { testSession } from '../../src/testing/index.js';
import { GO_AHEAD, OK_MAIL, OK_RCPT, lines, makeGateway, plugin, ready, sleep, splitAt, storeGateway, storePlugin } from './helpers.js';

describe('pipelining', () => {
  it('MAIL/RCPT/RCPT/DATA in one write: every reply, in order', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'RCPT TO:<x@far.test>', 'RCPT TO:<y@example.test>', 'DATA'))).toBe(
      OK_MAIL + OK_RCPT + '554 5.7.1 <x@far.test>: Relay access denied\r\n' + OK_RCPT + GO_AHEAD,
    );
  });

  it('replies stay in order when hooks answer at different speeds', async () => {
    const gw = makeGateway();
    await gw.use(
      plugin('slow', ({ tap }) =>
        tap('rcpt', async (_s, _t, r) => {
          await sleep(r.address.local === 'slow' ? 40 : 1);
          return r.address.local === 'no' ? undefined : accept();
        }),
      ),
    );
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<slow@x.test>', 'RCPT TO:<no@x.test>', 'RCPT TO:<fast@x.test>', 'NOOP'))).toBe(
      OK_MAIL + OK_RCPT + '554 5.7.1 <no@x.test>: Relay access denied\r\n' + OK_RCPT + '250 2.0.0 OK\r\n',
    );
  });

  it('commands after the final dot in the same chunk are processed, including a second message', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'P' });
    await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA'));
    expect(await s.send('one\r\n.\r\nMAIL FROM:<c@d.test>\r\nRCPT TO:<y@example.test>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n')).toBe(
      '250 2.0.0 OK: queued as P.1\r\n' + OK_MAIL + OK_RCPT + GO_AHEAD + '250 2.0.0 OK: queued as P.2\r\n221 2.0.0 mx.test closing connection\r\n',
    );
    expect(stored.map((m) => [m.from, m.rcpts])).toEqual([
      ['a@b.test', ['x@example.test']],
      ['c@d.test', ['y@example.test']],
    ]);
  });

  it('the whole session in one write, as a (non-conforming but common) client may send it', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw, { id: 'W' });
    expect(await s.send(lines('RSET', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA', 'hi', '.', 'NOOP', 'QUIT'))).toBe(
      '250 2.0.0 OK\r\n' + OK_MAIL + OK_RCPT + GO_AHEAD + '250 2.0.0 OK: queued as W.1\r\n250 2.0.0 OK\r\n221 2.0.0 mx.test closing connection\r\n',
    );
    expect(stored).toHaveLength(1);
  });

  it('property: any split of a pipelined dialogue gives byte-identical replies and messages', async () => {
    const wire = Buffer.from(
      lines('EHLO c.test', 'MAIL FROM:<a@b.test> SIZE=100', 'RCPT TO:<x@example.test>', 'RCPT TO:<x@far.test>', 'DATA') +
        lines('Subject: split', '', '..dot', 'text') +
        '.\r\n' +
        lines('MAIL FROM:<>', 'RCPT TO:<y@example.test>', 'BDAT 6') +
        'ab\r\ncd' +
        lines('BDAT 3 LAST', 'e', 'FOO', 'RSET', 'NOOP', 'QUIT'),
    );
    const reference = await run([wire]);
    expect(reference.out).toContain('221 2.0.0');
    expect(reference.bodies).toHaveLength(2);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: wire.length }), { maxLength: 30 }), async (cuts) => {
        const got = await run(splitAt(wire, cuts));
        expect(got.out).toBe(reference.out);
        expect(got.bodies).toEqual(reference.bodies);
      }),
      { numRuns: 150 },
    );
    // And the extreme: one byte per write.
    const bytes = await run([...wire].map((b) => Buffer.from([b])));
    expect(bytes).toEqual(reference);

    async function run(chunks: Buffer[]): Promise<{ out: string; bodies: string[] }> {
      const gw = makeGateway();
      const store = storePlugin('store', { domains: ['example.test'] });
      await gw.use(store.plugin);
      const s = await testSession(gw, { id: 'SPLIT' });
      const out = await s.sendChunks(chunks);
      // The Received header carries the date: compare from the body on.
      return { out, bodies: store.stored.map((m) => m.bytes.toString().replace(/^Received:[^]*?\r\n(?![ \t])/, '')) };
    }
  });
});
