import { Readable } from 'node:stream';
import { accept, definePlugin, tempfail, type Gateway, type Session, type Transaction } from '@mailgate/core';
import { startTestGateway, testSession, type TestGateway } from '@mailgate/core/testing';
import { afterEach, describe, expect, it } from 'vitest';

/** What a storage plugin saw: the recipients it claimed and the bytes it stored. */
interface Stored {
  session: Session;
  tx: Transaction;
  recipients: string[];
  bytes: Buffer;
}

/** Claims recipients of `domain`; stores what it claimed; records every policy hook it is called for. */
function storagePlugin(domain: string, stored: Stored[], policyCalls: string[], failQueue = false) {
  return definePlugin({
    name: 'store',
    setup({ tap, gateway }) {
      gateway.addLocalDomain(domain);
      for (const hook of ['connect', 'helo', 'mail', 'rcpt', 'data'] as const) tap(hook, () => void policyCalls.push(hook));
      tap('claim', (_s, _tx, rcpt) => (rcpt.address.domain === domain ? accept() : undefined));
      tap('queue', async (session, tx) => {
        if (failQueue) return tempfail('disk full');
        const chunks: Buffer[] = [];
        for await (const chunk of tx.message!.stream()) chunks.push(chunk as Buffer);
        stored.push({ session, tx, recipients: tx.claimedBy('store').map((r) => r.text), bytes: Buffer.concat(chunks) });
        return undefined;
      });
    },
  });
}

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(setup: (gateway: Gateway) => Promise<void>): Promise<Gateway> {
  gw = await startTestGateway({ hostname: 'mx.test' }, setup);
  return gw.gateway;
}

const message = 'From: MAILER-DAEMON@mx.test\r\nSubject: bounce\r\n\r\nHello\r\n';

describe('gateway.submit (the gateway\'s own mail)', () => {
  it('is delivered by the plugin that claims the recipient; no client-policy hook runs', async () => {
    const stored: Stored[] = [];
    const policy: string[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, policy)));
    const result = await gateway.submit({ sender: '', recipients: ['alice@local.test'], body: Buffer.from(message) });
    expect(result).toMatchObject({ queued: true, accepted: ['alice@local.test'], refused: [], reply: { code: 250, enhanced: '2.0.0' } });
    expect(result.id).toMatch(/^I[0-9A-Z]+\.1$/);
    expect(policy).toEqual([]);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.session.internal).toBe(true);
    expect(stored[0]!.tx.senderText).toBe('');
    expect(stored[0]!.recipients).toEqual(['alice@local.test']);
    const text = stored[0]!.bytes.toString();
    // Postfix's stamp for its own mail: no `from` clause, there is no client.
    expect(text).toMatch(/^Received: by mx\.test \(Mailgate\) id I[0-9A-Z]+\.1\r\n\tfor <alice@local\.test>;\r\n\t\w{3}, /);
    expect(text.slice(text.indexOf('\r\nFrom:') + 2)).toBe(message);
  });

  it('a client session is not internal, and its policy hooks run', async () => {
    const stored: Stored[] = [];
    const policy: string[] = [];
    await start((g) => g.use(storagePlugin('local.test', stored, policy)));
    const s = await testSession(gw!.gateway);
    await s.send('EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\n');
    expect(await s.send(`${message}.\r\n`)).toMatch(/^250 /);
    await s.end();
    expect(policy).toEqual(['connect', 'helo', 'mail', 'rcpt', 'data']);
    expect(stored[0]!.session.internal).toBe(false);
  });

  it('refuses what nobody claims with the default policy, and a non-local recipient is relayAllowed', async () => {
    const stored: Stored[] = [];
    const seen: Array<boolean | undefined> = [];
    const gateway = await start(async (g) => {
      await g.use(storagePlugin('local.test', stored, []));
      await g.use(definePlugin({ name: 'watch', setup: ({ tap }) => tap('claim', (_s, _tx, rcpt) => void seen.push(rcpt.data.relayAllowed)) }));
    });
    const result = await gateway.submit({ sender: 'postmaster@mx.test', recipients: ['nobody@remote.test'], body: Buffer.from(message) });
    expect(result.queued).toBe(false);
    expect(result.accepted).toEqual([]);
    expect(result.refused).toEqual([{ recipient: 'nobody@remote.test', reply: { code: 554, enhanced: '5.7.1', text: '<nobody@remote.test>: Relay access denied' } }]);
    expect(result.reply.code).toBe(554);
    expect(seen).toEqual([true]);
    expect(stored).toEqual([]);
  });

  it('takes the claimed recipients of a mixed list and reports the others', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    gateway.addLocalDomain('other.test');
    const result = await gateway.submit({ sender: '', recipients: ['a@local.test', 'x@other.test', 'b@local.test'], body: Buffer.from(message) });
    expect(result.queued).toBe(true);
    expect(result.accepted).toEqual(['a@local.test', 'b@local.test']);
    expect(result.refused.map((r) => [r.recipient, r.reply.code, r.reply.enhanced])).toEqual([['x@other.test', 550, '5.1.1']]);
    expect(stored[0]!.recipients).toEqual(['a@local.test', 'b@local.test']);
  });

  it('dot-stuffs a streamed body across chunk boundaries and delivers it byte for byte', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    const body = 'Subject: dots\r\n\r\n.\r\n..two\r\nx\r\n.\r\n.end\r\n';
    // split right after each LF and in the middle of CRLF, so every leading dot starts a chunk
    const chunks = ['Subject: dots\r\n\r\n', '.\r', '\n', '..two\r\nx\r\n', '.\r\n.', 'end\r\n'].map((c) => Buffer.from(c));
    expect(Buffer.concat(chunks).toString()).toBe(body);
    const result = await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Readable.from(chunks) });
    expect(result.queued).toBe(true);
    const text = stored[0]!.bytes.toString();
    expect(text.slice(text.indexOf('\r\nSubject:') + 2)).toBe(body);
  });

  it('ends a body without a final CRLF with one', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    const result = await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from('Subject: x\r\n\r\nno newline') });
    expect(result.queued).toBe(true);
    expect(stored[0]!.bytes.toString()).toMatch(/\r\n\r\nno newline\r\n$/);
  });

  it('refuses a body with bare line feeds like any other (no smuggling through submit)', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    const result = await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from('Subject: x\n\n.\nMAIL FROM:<x@y>\n') });
    expect(result).toMatchObject({ queued: false, accepted: [], reply: { code: 550, enhanced: '5.6.11' } });
    expect(stored).toEqual([]);
  });

  it('uses SMTPUTF8 for a non-ASCII address and 8BITMIME for an 8-bit body', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    const result = await gateway.submit({ sender: '', recipients: ['jörg@local.test'], body: Buffer.from('Subject: ü\r\n\r\nGrüße\r\n') });
    expect(result.queued).toBe(true);
    expect(stored[0]!.tx.smtputf8).toBe(true);
    expect(stored[0]!.tx.bodyType).toBe('8BITMIME');
  });

  it('reports a failing queue tap and keeps nothing', async () => {
    const gateway = await start((g) => g.use(storagePlugin('local.test', [], [], true)));
    const result = await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from(message) });
    expect(result).toMatchObject({ queued: false, accepted: [], reply: { code: 451, text: 'disk full' } });
  });

  it('takes a quoted local part with < and > (the engine parses it like any client\'s)', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    const result = await gateway.submit({ sender: '"a<b> c"@remote.test', recipients: ['a@local.test'], body: Buffer.from(message) });
    expect(result.queued).toBe(true);
    expect(stored[0]!.tx.senderText).toBe('"a<b> c"@remote.test');
  });

  it('rejects an address that would inject a command line', async () => {
    const gateway = await start((g) => g.use(storagePlugin('local.test', [], [])));
    await expect(gateway.submit({ sender: '', recipients: ['a@local.test>\r\nRCPT TO:<b@x'], body: Buffer.from(message) })).rejects.toThrow(TypeError);
  });

  it('ten refused recipients do not end the internal session: the others are still delivered', async () => {
    const stored: Stored[] = [];
    const gateway = await start((g) => g.use(storagePlugin('local.test', stored, [])));
    gateway.addLocalDomain('other.test');
    const unknown = Array.from({ length: 12 }, (_, i) => `u${i}@other.test`);
    const result = await gateway.submit({ sender: '', recipients: [...unknown, 'a@local.test'], body: Buffer.from(message) });
    expect(result.refused.map((r) => r.reply.code)).toEqual(unknown.map(() => 550));
    expect(result).toMatchObject({ queued: true, accepted: ['a@local.test'] });
    expect(stored[0]!.recipients).toEqual(['a@local.test']);
  });

  it('works before listen() without closing the hooks; during the drain of a shutdown it still works (and is waited for), after it 421', async () => {
    const { createGateway, silentLogger } = await import('@mailgate/core');
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const stored: Stored[] = [];
    const gateway = createGateway({ hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: join(await mkdtemp(join(tmpdir(), 'mg-submit-')), 'spool') } }, { logger: silentLogger });
    await gateway.use(storagePlugin('local.test', stored, []));
    expect((await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from(message) })).queued).toBe(true);
    gateway.hooks.rcpt.tap('late but before listen', () => undefined);
    await gateway.listen();
    const closing = gateway.close();
    // a session finishing while the gateway drains still sends its reports
    const during = gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from(message) });
    await closing;
    expect(stored).toHaveLength(2); // the shutdown waited for it before closing the plugins
    expect((await during).queued).toBe(true);
    expect((await gateway.submit({ sender: '', recipients: ['a@local.test'], body: Buffer.from(message) })).reply).toMatchObject({ code: 421, enhanced: '4.3.2' });
  });
});
