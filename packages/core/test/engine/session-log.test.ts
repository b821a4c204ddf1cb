/**
 * The line a session leaves in the log when it is over, like Postfix's `disconnect from
 * client[ip] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5`: what the client sent,
 * how much of it succeeded, and why the session ended — what an admin greps for when a
 * client gave up, and what fail2ban-style jails match on.
 */
import { describe, expect, it } from 'vitest';
import { accept, createGateway, createLogger, definePlugin, disconnect, reject } from '@mailgate/core';
import { testSession } from '@mailgate/core/testing';

function gatewayWithLog(limits: Record<string, unknown> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const gateway = createGateway(
    { hostname: 'mx.test', limits },
    { logger: createLogger({ level: 'info', format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) },
  );
  const closed = () => lines.filter((l) => l.msg === 'session closed');
  return { gateway, lines, closed };
}

const store = definePlugin({
  name: 'store',
  setup({ tap, gateway }) {
    gateway.addLocalDomain('example.test');
    tap('claim', (_s, _tx, rcpt) => (rcpt.address.local === 'alice' ? accept() : reject('No such user', { code: 550, enhanced: '5.1.1' })));
    tap('queue', () => undefined);
  },
});

describe('the session summary log line', () => {
  it('counts each command, ok/sent where some failed, and ends with quit', async () => {
    const { gateway, closed } = gatewayWithLog();
    await gateway.use(store);
    const s = await testSession(gateway, { remoteAddress: '192.0.2.7' });
    await s.send('EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n');
    await s.send('hello\r\n.\r\nQUIT\r\n');
    await s.end();
    expect(closed()).toEqual([
      expect.objectContaining({
        level: 'info',
        session: s.session.id,
        client: '192.0.2.7',
        helo: 'client.test',
        tls: false,
        reason: 'quit',
        commands: 'ehlo=1 mail=1 rcpt=1/2 data=1/2 quit=1 commands=5/7',
        ms: expect.any(Number),
      }),
    ]);
  });

  it('a client that drops the connection in the middle of a message: lost connection after DATA', async () => {
    const { gateway, closed } = gatewayWithLog();
    await gateway.use(store);
    const s = await testSession(gateway);
    await s.send('HELO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\npart of a bo');
    await s.end();
    expect(closed()[0]).toMatchObject({ reason: 'lost connection after DATA', commands: 'helo=1 mail=1 rcpt=1 commands=3' });
  });

  it('too many errors, unknown commands, and a connection that says nothing', async () => {
    const errors = gatewayWithLog({ maxErrors: 2 });
    let s = await testSession(errors.gateway);
    await s.send('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\n');
    await s.end();
    expect(errors.closed()[0]).toMatchObject({ reason: 'too many errors after RCPT', commands: 'mail=0/1 rcpt=0/1 commands=0/2' });

    const junk = gatewayWithLog();
    s = await testSession(junk.gateway);
    await s.send('FOO\r\nQUIT\r\n');
    await s.end();
    expect(junk.closed()[0]).toMatchObject({ reason: 'quit', commands: 'unknown=0/1 quit=1 commands=1/2' });

    const silent = gatewayWithLog();
    s = await testSession(silent.gateway);
    await s.end();
    expect(silent.closed()[0]).toMatchObject({ reason: 'lost connection after CONNECT', commands: 'commands=0' });
  });

  it('a plugin that disconnects the client: disconnected by policy, not a lost connection', async () => {
    const { gateway, closed } = gatewayWithLog();
    await gateway.use(definePlugin({ name: 'bouncer', setup: ({ tap }) => tap('rcpt', () => disconnect('Go away')) }));
    const s = await testSession(gateway);
    await s.send('HELO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\n');
    await s.end();
    expect(closed()[0]).toMatchObject({ reason: 'disconnected by policy after RCPT', commands: 'helo=1 mail=1 rcpt=0/1 commands=2/3' });
  });

  it('the idle timeout: timeout after the last command', async () => {
    const { gateway, closed } = gatewayWithLog();
    const s = await testSession(gateway);
    await s.send('HELO client.test\r\nMAIL FROM:<a@client.test>\r\n');
    s.session.timeout();
    await s.end();
    expect(closed()[0]).toMatchObject({ reason: 'timeout after MAIL', commands: 'helo=1 mail=1 commands=2' });
  });

  it('no line for the gateway\'s own submissions (bounces, reports)', async () => {
    const { gateway, closed } = gatewayWithLog();
    await gateway.use(store);
    const result = await gateway.submit({ sender: '', recipients: ['alice@example.test'], body: Buffer.from('Subject: x\r\n\r\nbody\r\n') });
    expect(result.queued).toBe(true);
    expect(closed()).toEqual([]);
  });
});
