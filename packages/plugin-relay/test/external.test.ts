/** Real foreign receiving servers on loopback: Python's aiosmtpd and Postfix's smtp-sink. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closedPort, DEST_ZONE, listening, message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor, type Relayer } from './helpers.js';

const PY = '/usr/bin/python3';
const SINK = '/usr/sbin/smtp-sink';
const fx = useRelayFixture({
  ...DEST_ZONE,
  'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 5 }] },
  'mx.sender.test': { A: ['127.0.0.1'] },
});
const { cleanup } = fx;

function start(cmd: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  return { child, output: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
}

async function relayer(mxPorts: Record<string, number>): Promise<Relayer> {
  const r = await startRelayer({ mxPort: mxPorts, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } }, fx.dns.address);
  cleanup.push(() => r.close());
  return r;
}

describe.skipIf(!existsSync(PY))('relay → aiosmtpd', () => {
  it('delivers an 8-bit message byte for byte', async () => {
    const port = await closedPort();
    const srv = start(PY, [new URL('./aiosmtpd-recorder.py', import.meta.url).pathname, String(port)]);
    await listening(port);
    const r = await relayer({ 'mx1.dest.test': port });
    const body = message('aio', 'Grüße aus Köln');
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], body);
    await waitFor(() => r.events.delivered.length === 1, 10_000, 'delivery');
    const line = await waitFor(() => srv.output().split('\n').find((l) => l.startsWith('{')), 5_000, 'aiosmtpd output');
    const got = JSON.parse(line) as { from: string; to: string[]; mail_options: string[]; data: string };
    expect(got.from).toBe('alice@sender.test');
    expect(got.to).toEqual(['bob@dest.test']);
    const data = Buffer.from(got.data, 'base64');
    // the relayed message is the received one plus the gateway's Received: header, byte for byte
    const received = data.toString('latin1').replace(/^Received: [\s\S]*?\r\n(?![ \t])/, '');
    expect(received).toBe(Buffer.from(body.replace(/\r?\n/g, '\r\n'), 'utf8').toString('latin1'));
    expect(r.events.delivered[0]!.response).toMatch(/^250/);
  });
});

describe.skipIf(!existsSync(SINK))('relay → Postfix smtp-sink', () => {
  it('4xx at RCPT defers; once the server accepts, the message is delivered', async () => {
    const port = await closedPort();
    const soft = start(SINK, ['-u', 'nobody', '-r', 'RCPT', `127.0.0.1:${port}`, '100']);
    await listening(port);
    const r = await relayer({ 'mx1.dest.test': port });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('sink'));
    await waitFor(() => r.events.deferred.length >= 2, 10_000, 'two deferrals');
    expect(r.events.deferred[0]!.error).toMatch(/^4\d\d /);
    expect(r.events.delivered).toHaveLength(0);
    await stop(soft.child);
    start(SINK, ['-u', 'nobody', `127.0.0.1:${port}`, '100']);
    await listening(port);
    await waitFor(() => r.events.delivered.length === 1, 10_000, 'delivery');
    expect(r.events.bounced).toHaveLength(0);
  });

  it('5xx at DATA fails every recipient permanently and bounces to the sender', async () => {
    const port = await closedPort();
    start(SINK, ['-u', 'nobody', '-f', 'DATA', `127.0.0.1:${port}`, '100']);
    await listening(port);
    const senderMx = await startReceiver();
    cleanup.push(() => senderMx.close());
    const r = await relayer({ 'mx1.dest.test': port, 'mx.sender.test': senderMx.port });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@dest.test'], message('hard'));
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'bounce');
    const dsn = senderMx.messages[0]!.data;
    expect(dsn).toContain('Final-Recipient: rfc822; a@dest.test');
    expect(dsn).toContain('Final-Recipient: rfc822; b@dest.test');
    expect(dsn).toMatch(/Diagnostic-Code: smtp; 5\d\d /);
    expect(r.events.deferred).toHaveLength(0);
  });
});
