/**
 * What the relay logs, as a Postfix admin reads it: one `relay: sent` line per delivered
 * transaction, `relay: bounced` per failed recipient with its status and reason,
 * `relay: deferred` with recipients, reason and next attempt, error texts with the
 * host or domain named once, and a held notification that says why it is held.
 * A real relay delivering to a second Mailgate on loopback, with a capturing logger.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, DnsResolver } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import relay, { type RelayOptionsInput } from '../src/index.js';
import { allowRelay, closedPort, DEST_ZONE, message, reject, sendMail, tempfail, startReceiver, useRelayFixture, waitFor, type Receiver } from './helpers.js';

const fx = useRelayFixture({
  ...DEST_ZONE,
  'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 5 }] },
  'mx.sender.test': { A: ['127.0.0.1'] },
  'admin.test': { MX: [{ exchange: 'mx.admin.test', priority: 5 }] },
  'mx.admin.test': { A: ['127.0.0.1'] },
});
const { cleanup } = fx;

type Line = { level: string; msg: string } & Record<string, unknown>;

async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const r = await startReceiver(options);
  cleanup.push(() => r.close());
  return r;
}

/** The relay under test, its log lines parsed from the JSON logger. */
async function relayer(options: RelayOptionsInput): Promise<{ port: number; lines: Line[] }> {
  const lines: Line[] = [];
  const logger = createLogger({ level: 'info', format: 'json', write: (line) => void lines.push(JSON.parse(line) as Line) });
  const gw = await startTestGateway(
    { hostname: 'relay.test' },
    async (g, dir) => {
      await g.use(allowRelay);
      await g.use(relay, { retry: { schedule: ['30s'], maxAge: '1h', jitter: 0 }, allowLoopbackMx: true, ...options, queueDir: join(dir, 'queue') });
    },
    { dns: new DnsResolver({ servers: [fx.dns.address] }), logger },
  );
  cleanup.push(() => gw.close());
  return { port: gw.port, lines };
}

const find = (lines: Line[], msg: string, pred: (l: Line) => boolean = () => true) => lines.find((l) => l.msg === msg && pred(l));
const waitLine = (lines: Line[], msg: string, pred?: (l: Line) => boolean) => waitFor(() => find(lines, msg, pred), 10_000, `log line "${msg}"`);
const queuedId = (lines: Line[]) => find(lines, 'relay: queued')!.id as string;

describe('relay log: delivered, bounced, deferred', () => {
  it('logs one "relay: sent" line per delivered transaction: queue id, recipients, host[address]:port, delay, reply', async () => {
    const dest = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.port, 'alice@sender.test', ['bob@dest.test', 'carol@dest.test'], message('sent'));
    const sent = await waitLine(r.lines, 'relay: sent');
    expect(sent).toMatchObject({ level: 'info', id: queuedId(r.lines), relay: `mx1.dest.test[127.0.0.1]:${dest.port}`, status: 'sent' });
    expect(String(sent.to).split(',').sort()).toEqual(['bob@dest.test', 'carol@dest.test']);
    expect(typeof sent.delay).toBe('number');
    expect(sent.delay as number).toBeGreaterThanOrEqual(0);
    expect(sent.response).toMatch(/^250 /);
    expect(dest.messages).toHaveLength(1);
    expect(r.lines.filter((l) => l.msg === 'relay: sent')).toHaveLength(1);
  });

  it('a 5xx for one recipient: "relay: bounced" names it with its status and reason, the other is "sent"', async () => {
    const dest = await receiver({ policy: (rcpt) => (rcpt === 'gone@dest.test' ? reject('mailbox gone', { code: 550, enhanced: '5.1.1' }) : undefined) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.port, 'alice@sender.test', ['bob@dest.test', 'gone@dest.test'], message('bounced'));
    const id = await waitFor(() => r.lines.length && queuedId(r.lines), 10_000, 'queued');
    const bounced = await waitLine(r.lines, 'relay: bounced', (l) => l.id === id);
    expect(bounced).toMatchObject({ level: 'info', to: 'gone@dest.test', relay: `mx1.dest.test[127.0.0.1]:${dest.port}`, dsn: '5.1.1', status: 'bounced' });
    expect(bounced.reason).toMatch(/^550 5\.1\.1 mailbox gone/);
    expect(find(r.lines, 'relay: sent', (l) => l.id === id)).toMatchObject({ to: 'bob@dest.test' });
    const queued = await waitLine(r.lines, 'relay: bounce queued', (l) => l.id === id);
    expect(queued).toMatchObject({ to: 'alice@sender.test', recipients: 'gone@dest.test' });
    // the bounce itself is then delivered, and logged as sent
    await waitLine(r.lines, 'relay: sent', (l) => l.id === queued.bounce && l.to === 'alice@sender.test');
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
  });

  it('NXDOMAIN: bounced 5.1.2 with the domain named once', async () => {
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx.sender.test': senderMx.port } });
    await sendMail(r.port, 'alice@sender.test', ['x@nowhere.test'], message('nx'));
    const bounced = await waitLine(r.lines, 'relay: bounced');
    expect(bounced).toMatchObject({ to: 'x@nowhere.test', dsn: '5.1.2', status: 'bounced', reason: 'nowhere.test: no such domain', relay: 'none' });
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    expect(senderMx.messages[0]!.data).toContain('Diagnostic-Code: x-mailgate; nowhere.test: no such domain\r\n');
  });

  it('connection refused: "relay: deferred" with recipients, reason (host named once) and next attempt', async () => {
    const port = await closedPort();
    const r = await relayer({ smarthost: { host: `127.0.0.1:${port}` } });
    const before = Date.now();
    await sendMail(r.port, 'alice@sender.test', ['bob@dest.test', 'carol@dest.test'], message('deferred'));
    const line = await waitLine(r.lines, 'relay: deferred');
    const where = `127.0.0.1[127.0.0.1]:${port}`;
    expect(line).toMatchObject({ level: 'info', id: queuedId(r.lines), relay: where, status: 'deferred', attempts: 1 });
    expect(String(line.to).split(',').sort()).toEqual(['bob@dest.test', 'carol@dest.test']);
    expect(line.reason).toMatch(new RegExp(`^${where.replace(/[[\].]/g, '\\$&')}: .*ECONNREFUSED`));
    expect(String(line.reason).split(where)).toHaveLength(2); // named exactly once
    expect(line.dsn).toMatch(/^4\./);
    const next = Date.parse(String(line.nextAttempt));
    expect(next).toBeGreaterThanOrEqual(before + 29_000);
    expect(next).toBeLessThanOrEqual(Date.now() + 30_000);
  });
});

describe('relay log: the transaction id the client was told', () => {
  it('is `tx` on the queued, sent, deferred and bounced lines of its message, so grep follows it', async () => {
    const dest = await receiver({ policy: (rcpt, n) => (rcpt === 'gone@dest.test' ? reject('gone', { code: 550, enhanced: '5.1.1' }) : rcpt === 'later@dest.test' && n === 1 ? tempfail('busy', { code: 451, enhanced: '4.3.0' }) : undefined) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, retry: { schedule: ['200ms'], maxAge: '1h', jitter: 0 } });
    const replies = await sendMail(r.port, 'alice@sender.test', ['bob@dest.test', 'gone@dest.test', 'later@dest.test'], message('traced'));
    const tx = /queued as (\S+)/.exec(replies.at(-1)!)![1]!;
    await waitLine(r.lines, 'relay: sent', (l) => l.to === 'later@dest.test');
    const id = queuedId(r.lines);
    const ofMessage = r.lines.filter((l) => l.id === id && /^relay: (queued|sent|deferred|bounced|bounce queued)$/.test(l.msg));
    expect(ofMessage.map((l) => l.msg).sort()).toEqual(['relay: bounce queued', 'relay: bounced', 'relay: deferred', 'relay: queued', 'relay: sent', 'relay: sent']);
    for (const line of ofMessage) expect(line.tx).toBe(tx);
  });
});

describe('relay log: held notifications say why', () => {
  it('postmaster set, the double bounce fails: the error says so, not "no postmaster configured"', async () => {
    const dest = await receiver({ policy: () => reject('gone', { code: 550, enhanced: '5.1.1' }) });
    const admin = await receiver({ policy: () => reject('no such user', { code: 550, enhanced: '5.1.1' }) });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.admin.test': admin.port }, postmaster: 'postmaster@admin.test' });
    await sendMail(r.port, '', ['x@dest.test'], message('dbl'));
    const queued = await waitLine(r.lines, 'relay: double bounce to postmaster queued');
    expect(queued).toMatchObject({ to: 'postmaster@admin.test', recipients: 'x@dest.test' });
    const failed = await waitLine(r.lines, 'relay: bounced', (l) => l.id === queued.bounce);
    expect(failed).toMatchObject({ to: 'postmaster@admin.test', dsn: '5.1.1', relay: `mx.admin.test[127.0.0.1]:${admin.port}` });
    const held = await waitFor(() => r.lines.find((l) => l.level === 'error' && /held/.test(l.msg)), 10_000, 'the held error');
    expect(held.msg).toBe('relay: held in the queue');
    expect(held.reason).toMatch(/double bounce to the postmaster \(postmaster@admin\.test\) could not be delivered/);
    expect(held.reason).not.toMatch(/no postmaster/);
    expect(held).toMatchObject({ id: queued.bounce, recipients: 'postmaster@admin.test' });
    expect(r.lines.filter((l) => l.level === 'error')).toHaveLength(1);
  });

  it('no postmaster: a failed message from <> is held, and the error says no postmaster is configured', async () => {
    const dest = await receiver({ policy: () => reject('gone', { code: 550, enhanced: '5.1.1' }) });
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.port, '', ['x@dest.test'], message('held'));
    const held = await waitFor(() => r.lines.find((l) => l.level === 'error' && /held/.test(l.msg)), 10_000, 'the held error');
    expect(held.reason).toMatch(/a message from <> to x@dest\.test could not be delivered and no postmaster is configured/);
    expect(held).toMatchObject({ id: queuedId(r.lines), recipients: 'x@dest.test' });
    expect(find(r.lines, 'relay: bounced')).toMatchObject({ to: 'x@dest.test', dsn: '5.1.1', status: 'bounced' });
    expect(r.lines.filter((l) => l.level === 'error')).toHaveLength(1);
  });
});
