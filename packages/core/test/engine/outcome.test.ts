/**
 * `tx.outcome`: the engine tells `reset` taps how the transaction ended — after
 * DATA or BDAT LAST (with the reply and whether every queue tap succeeded), on RSET,
 * HELO/EHLO, STARTTLS, QUIT, disconnect and timeout, and when `mail` refused the
 * sender. It is undefined while the transaction is still being decided.
 */
import { describe, expect, it } from 'vitest';
import { reject, type EngineIO, type TransactionOutcome } from '../../src/index.js';
import { makeGateway, plugin, ready, storePlugin, type StoreOptions } from './helpers.js';

const ENVELOPE = 'MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n';

async function setup(store: StoreOptions = {}, extra?: Parameters<typeof plugin>[1]) {
  const gw = makeGateway();
  await gw.use(storePlugin('store', { domains: ['example.test'], ...store }).plugin);
  if (extra) await gw.use(plugin('extra', extra));
  const seen: Array<{ id: string; outcome: TransactionOutcome | undefined }> = [];
  const during: Array<TransactionOutcome | undefined> = [];
  await gw.use(
    plugin('spy', ({ tap }) => {
      for (const hook of ['mail', 'data', 'queue'] as const) tap(hook, (_s, tx) => void during.push(tx.outcome));
      tap('rcpt', (_s, tx) => void during.push(tx.outcome));
      tap('reset', (_s, tx) => void seen.push({ id: tx.id, outcome: tx.outcome }));
    }),
  );
  return { gw, seen, during };
}

const MESSAGE = 'DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n';

describe('tx.outcome at reset', () => {
  it('DATA accepted: message, the 250 reply, queued', async () => {
    const { gw, seen, during } = await setup();
    const s = await ready(gw, { id: 'O' });
    expect(await s.send(ENVELOPE + MESSAGE)).toMatch(/250 2\.0\.0 OK: queued as O\.1\r\n$/);
    expect(seen).toEqual([{ id: 'O.1', outcome: { end: 'message', reply: { code: 250, enhanced: '2.0.0', text: 'OK: queued as O.1' }, queued: true } }]);
    expect(Object.isFrozen(seen[0]!.outcome)).toBe(true);
    // mail, rcpt, data, queue all ran before it was set.
    expect(during).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('BDAT LAST accepted: the same', async () => {
    const { gw, seen } = await setup();
    const s = await ready(gw, { id: 'B' });
    await s.send(ENVELOPE + 'BDAT 3\r\nabcBDAT 2 LAST\r\n\r\n');
    expect(seen[0]!.outcome).toEqual({ end: 'message', reply: { code: 250, enhanced: '2.0.0', text: 'OK: queued as B.1' }, queued: true });
  });

  it.each([
    ['a queue tap throws', { fail: 'throw' }, 451],
    ['a queue tap tempfails', { fail: 'tempfail-verdict' }, 451],
    ['a queue tap rejects', { fail: 'reject-verdict' }, 554],
  ] as const)('%s: message, the %s reply, not queued', async (_why, store, code) => {
    const { gw, seen } = await setup(store);
    const s = await ready(gw);
    const out = await s.send(ENVELOPE + MESSAGE);
    expect(out.split('\r\n').at(-2)).toMatch(new RegExp(`^${code} `));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.outcome).toMatchObject({ end: 'message', reply: { code }, queued: false });
  });

  it('refused at data: message, not queued', async () => {
    const { gw, seen } = await setup({}, ({ tap }) => tap('data', () => reject('spam', { code: 554, enhanced: '5.7.1' })));
    const s = await ready(gw);
    await s.send(ENVELOPE + MESSAGE);
    expect(seen[0]!.outcome).toEqual({ end: 'message', reply: { code: 554, enhanced: '5.7.1', text: 'spam' }, queued: false });
  });

  it('a bare LF under reject: message, 550 5.6.11, not queued', async () => {
    const { gw, seen } = await setup();
    const s = await ready(gw);
    await s.send(ENVELOPE + 'DATA\r\nbare\nLF\r\n.\r\n');
    expect(seen[0]!.outcome).toMatchObject({ end: 'message', reply: { code: 550, enhanced: '5.6.11' }, queued: false });
  });

  it('refused by a mail tap: refused', async () => {
    const { gw, seen } = await setup({}, ({ tap }) => tap('mail', () => reject('no')));
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\n');
    expect(seen).toEqual([{ id: expect.any(String), outcome: { end: 'refused', queued: false } }]);
  });

  it.each([
    ['RSET', 'RSET\r\n', 'rset'],
    ['EHLO', 'EHLO again.test\r\n', 'helo'],
    ['HELO', 'HELO again.test\r\n', 'helo'],
    ['QUIT', 'QUIT\r\n', 'quit'],
  ] as const)('%s in the middle of a transaction: %s, not queued', async (_verb, command, end) => {
    const { gw, seen } = await setup();
    const s = await ready(gw);
    await s.send(ENVELOPE + 'BDAT 3\r\nabc');
    await s.send(command);
    if (command === 'QUIT\r\n') await s.end();
    expect(seen).toEqual([{ id: expect.any(String), outcome: { end, queued: false } }]);
  });

  it('the connection drops in the middle of DATA: disconnect', async () => {
    const { gw, seen } = await setup();
    const s = await ready(gw);
    await s.send(ENVELOPE + 'DATA\r\nSubject: half\r\n');
    await s.end();
    expect(seen).toEqual([{ id: expect.any(String), outcome: { end: 'disconnect', queued: false } }]);
  });

  it('the idle timer fires: disconnect', async () => {
    const { gw, seen } = await setup();
    const s = await ready(gw);
    await s.send(ENVELOPE);
    s.session.timeout();
    await s.end();
    expect(seen[0]!.outcome).toEqual({ end: 'disconnect', queued: false });
  });

  it('QUIT after a finished message: that message keeps its own outcome, reset runs once', async () => {
    const { gw, seen } = await setup();
    const s = await ready(gw);
    await s.send(ENVELOPE + MESSAGE + 'QUIT\r\n');
    await s.end();
    expect(seen.map((x) => x.outcome?.end)).toEqual(['message']);
  });

  it('STARTTLS in the middle of a transaction: starttls', async () => {
    const { gw, seen } = await setup();
    let output = '';
    const io: EngineIO = {
      write: (d) => void (output += d),
      close: () => undefined,
      pause: () => undefined,
      resume: () => undefined,
      startTls: async () => ({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', implicit: false }),
    };
    const session = gw.openSession(io, { tlsAvailable: true });
    await session.start();
    session.feed(Buffer.from('EHLO c.test\r\n' + ENVELOPE));
    await session.settled();
    session.feed(Buffer.from('STARTTLS\r\n'));
    await session.settled();
    await new Promise((r) => setTimeout(r, 10));
    await session.settled();
    expect(output).toContain('220 2.0.0 Ready to start TLS');
    expect(seen).toEqual([{ id: expect.any(String), outcome: { end: 'starttls', queued: false } }]);
  });
});
