/**
 * Finding 4 of the hostile-peer report: the relay scheduled delivery in its `queue` tap,
 * so when a storage plugin listed after it failed the message (maildir over quota → 552,
 * a transient error → 451), the client was told the message was not taken but the relayed
 * recipients got it anyway (and once more on every retry). The entry is now written in
 * `queue` and scheduled only in `reset` once the client got 250; otherwise it is removed.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DnsResolver, definePlugin, reject, tempfail } from '@mailgate/core';
import { SmtpTestClient, startTestGateway, type TestGateway } from '@mailgate/core/testing';
import relay from '../src/index.js';
import { allowRelay, DEST_ZONE, message, startReceiver, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture(DEST_ZONE);

/** A storage plugin after the relay: fails messages whose subject says so (4xx or 5xx). */
const laterStorage = definePlugin({
  name: 'test-later-storage',
  setup({ tap }) {
    tap('queue', async (_s, tx) => {
      const subject = (await tx.message.headers()).find((h) => h.name.toLowerCase() === 'subject')?.value ?? '';
      if (/fail-4xx/.test(subject)) return tempfail('disk trouble', { code: 451, enhanced: '4.3.0' });
      if (/fail-5xx/.test(subject)) return reject('Mailbox full', { code: 552, enhanced: '5.2.2' });
      return undefined;
    });
  },
});

async function gateway(destPort: number): Promise<TestGateway> {
  const gw = await startTestGateway(
    { hostname: 'relay.test' },
    async (g, dir) => {
      await g.use(allowRelay);
      await g.use(relay, { queueDir: join(dir, 'queue'), allowLoopbackMx: true, mxPort: { 'mx1.dest.test': destPort }, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } });
      await g.use(laterStorage);
    },
    { dns: new DnsResolver({ servers: [fx.dns.address] }) },
  );
  fx.cleanup.push(() => gw.close());
  return gw;
}

async function send(c: SmtpTestClient, subject: string): Promise<number> {
  await c.command('MAIL FROM:<alice@sender.test>');
  await c.command('RCPT TO:<bob@dest.test>');
  await c.command('DATA');
  const text = message(subject).replace(/\r\n$/, '');
  return (await c.command(`${text}\r\n.`)).code;
}

describe('relay: a queue tap after the relay fails the message', () => {
  it('4xx and 5xx from a later storage plugin: the relayed copy is withdrawn, not sent; the retry is sent once', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const gw = await gateway(dest.port);
    const c = await SmtpTestClient.connect(gw.port);
    await c.read();
    await c.command('EHLO client.test');
    expect(await send(c, 'fail-4xx')).toBe(451);
    expect(await send(c, 'fail-5xx')).toBe(552);
    // The client retries the first one, which now succeeds.
    expect(await send(c, 'retried')).toBe(250);
    await c.command('QUIT').catch(() => undefined);
    await waitFor(() => dest.messages.length >= 1, 10_000, 'the accepted message');
    await waitFor(async () => (await readdir(join(gw.dir, 'queue', 'msg'))).length === 0, 5_000, 'an empty queue');
    // Everything that could have been scheduled has been by now (all three entries were due at once).
    expect(dest.messages.map((m) => /Subject: (\S+)/.exec(m.data)?.[1])).toEqual(['retried']);
  });
});
