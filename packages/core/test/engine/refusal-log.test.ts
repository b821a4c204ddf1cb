/**
 * Every client-policy refusal before DATA gets one info line (Postfix's `NOQUEUE:
 * reject:`): an admin must see who was turned away, at which step, and why.
 */
import { describe, expect, it } from 'vitest';
import { reject } from '../../src/index.js';
import { makeGateway, plugin, ready, recordingLogger, storePlugin } from './helpers.js';

describe('refusal log lines', () => {
  it('MAIL and RCPT refusals, by a plugin and by the default policy, each with their reply and reason', async () => {
    const { logger, lines } = recordingLogger('info');
    const gw = makeGateway({}, logger);
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    await gw.use(
      plugin('policy', ({ tap }) => {
        tap('mail', (_s, tx) => (tx.sender?.domain === 'spam.test' ? reject('Go away', { reason: 'sender on the block list' }) : undefined));
        tap('rcpt', (_s, _tx, rcpt) => (rcpt.address.local === 'closed' ? reject('Mailbox closed', { code: 550, enhanced: '5.2.1', reason: 'closed mailbox' }) : undefined));
      }),
    );
    const s = await ready(gw);
    await s.send('MAIL FROM:<x@spam.test>\r\n');
    await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<closed@example.test>\r\nRCPT TO:<someone@elsewhere.test>\r\n');
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'refused');
    expect(refused).toEqual([
      expect.objectContaining({ level: 'info', stage: 'mail', client: '127.0.0.1', helo: 'c.test', from: 'x@spam.test', reply: '550 5.7.1 Go away', reason: 'sender on the block list' }),
      expect.objectContaining({ stage: 'rcpt', from: 'a@b.test', rcpt: 'closed@example.test', reply: '550 5.2.1 Mailbox closed', reason: 'closed mailbox' }),
      expect.objectContaining({ stage: 'rcpt', from: 'a@b.test', rcpt: 'someone@elsewhere.test', reply: '554 5.7.1 <someone@elsewhere.test>: Relay access denied', reason: 'not relayable' }),
    ]);
  });

  it('the logged reply is the reply the client got (sanitised), not the text the plugin gave', async () => {
    const { logger, lines } = recordingLogger('info');
    const gw = makeGateway({}, logger);
    await gw.use(plugin('policy', ({ tap }) => tap('rcpt', () => reject('Empfänger \u202e abgelehnt'))));
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n')).toContain('550 5.7.1 Empf?nger ? abgelehnt\r\n');
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'refused');
    expect(refused).toEqual([expect.objectContaining({ stage: 'rcpt', reply: '550 5.7.1 Empf?nger ? abgelehnt' })]);
  });

  it('a refused HELO is logged with the name that was refused', async () => {
    const { logger, lines } = recordingLogger('info');
    const gw = makeGateway({}, logger);
    await gw.use(plugin('helo', ({ tap }) => tap('helo', (_s, info) => (info.name === 'bad.example' ? reject('No', { reason: 'bad name' }) : undefined))));
    const s = await ready(gw);
    await s.send('EHLO bad.example\r\n');
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'refused');
    expect(refused).toEqual([expect.objectContaining({ stage: 'helo', helo: 'bad.example', reason: 'bad name' })]);
  });

  it('a refused connection is logged too', async () => {
    const { logger, lines } = recordingLogger('info');
    const gw = makeGateway({}, logger);
    await gw.use(plugin('block', ({ tap }) => tap('connect', () => reject('Not here', { reason: 'on a list' }))));
    await ready(gw).catch(() => undefined);
    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'refused');
    expect(refused).toEqual([expect.objectContaining({ stage: 'connect', client: '127.0.0.1', reply: '554 5.7.1 Not here', reason: 'on a list' })]);
  });
});
