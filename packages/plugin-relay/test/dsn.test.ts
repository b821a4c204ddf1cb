/**
 * DSN (RFC 3461) through the relay, against real servers on loopback: the
 * parameters are kept in the queue, passed to a next hop that advertises DSN (a
 * second Mailgate), and honoured in our own notifications when it does not (a
 * Mailgate with `smtp.dsn: false`, aiosmtpd): NOTIFY=NEVER / without FAILURE → no
 * bounce, DELAY → the delay warning, SUCCESS → an "Action: relayed" DSN;
 * Original-Recipient, Original-Envelope-Id, RET=FULL / HDRS. Also old queue entries
 * without DSN fields, and a "relayed" DSN owed when the process stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QueueEntry } from '../src/index.js';
import { closedPort, DEST_ZONE, listening, message, reject, sendMail, startReceiver, startRelayer, tempfail, useRelayFixture, waitFor, type Receiver, type Relayer } from './helpers.js';

const fx = useRelayFixture({
  ...DEST_ZONE,
  'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 5 }] },
  'mx.sender.test': { A: ['127.0.0.1'] },
});
const { cleanup } = fx;

async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const r = await startReceiver(options);
  cleanup.push(() => r.close());
  return r;
}
async function relayer(options: Parameters<typeof startRelayer>[0]): Promise<Relayer> {
  const r = await startRelayer({ retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 }, ...options }, fx.dns.address);
  cleanup.push(() => r.close());
  return r;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const queueFiles = async (dir: string) => (await readdir(join(dir, 'msg'))).filter((n) => !n.startsWith('.'));

/** The message/delivery-status part of a DSN: per-message fields, then one block per recipient. */
function report(dsn: string): { message: string; recipients: string[] } {
  const part = /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n\r\n--/.exec(dsn);
  if (!part) throw new Error(`no delivery-status part in ${dsn}`);
  const [message, ...recipients] = part[1]!.split('\r\n\r\n');
  return { message: message!, recipients };
}

describe('relay → a next hop that advertises DSN', () => {
  it('passes RET, ENVID and each recipient\'s own NOTIFY and ORCPT on, and sends no DSN itself', async () => {
    const dest = await receiver();
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@dest.test', 'c@dest.test', 'd@dest.test'], message('pass'), {
      mail: 'RET=HDRS ENVID=env+2B42',
      rcpt: {
        'a@dest.test': 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alias+2Ba@sender.test',
        'b@dest.test': 'NOTIFY=NEVER',
        'd@dest.test': 'ORCPT=utf-8;\\x{E9}l\\x{E8}ve@sender.test',
      },
    });
    await waitFor(() => dest.messages.length === 1 && r.events.delivered.length === 1, 10_000, 'delivery');
    const got = dest.messages[0]!;
    expect(got.dsn).toEqual({ ret: 'HDRS', envid: 'env+42' });
    const byRcpt = Object.fromEntries(got.to.map((t, i) => [t, got.rcptDsn[i]]));
    expect(byRcpt).toEqual({
      'a@dest.test': { notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'rfc822', address: 'Alias+a@sender.test' } },
      'b@dest.test': { notify: ['NEVER'] },
      'c@dest.test': undefined,
      'd@dest.test': { orcpt: { type: 'utf-8', address: 'élève@sender.test' } },
    });
    // The next hop reports success now: nothing from us.
    await sleep(500);
    expect(senderMx.messages).toHaveLength(0);
    await waitFor(async () => (await queueFiles(join(r.gw.dir, 'queue'))).length === 0, 5_000, 'empty queue');
  });

  it('passes nothing when the message had no DSN parameters', async () => {
    const dest = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test'], message('plain'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.dsn).toBeUndefined();
    expect(dest.messages[0]!.rcptDsn).toEqual([undefined]);
  });
});

describe('relay → a next hop without DSN: NOTIFY=SUCCESS gets a "relayed" DSN (RFC 3461 §5.2.2)', () => {
  it('to the sender, for the recipients that asked, with Original-Recipient and Original-Envelope-Id, headers only', async () => {
    const dest = await receiver({ config: { smtp: { dsn: false } } });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@dest.test', 'c@dest.test'], message('relayed', 'the body text'), {
      mail: 'RET=FULL ENVID=QQ314159',
      rcpt: { 'a@dest.test': 'NOTIFY=SUCCESS ORCPT=rfc822;first@sender.test', 'b@dest.test': 'NOTIFY=FAILURE,DELAY', 'c@dest.test': 'NOTIFY=success,failure' },
    });
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the relayed DSN');
    expect(dest.messages).toHaveLength(1);
    expect(dest.messages[0]!.dsn).toBeUndefined();
    const dsn = senderMx.messages[0]!;
    expect(dsn.from).toBe('');
    expect(dsn.to).toEqual(['alice@sender.test']);
    expect(dsn.data).toContain('Subject: Successful Mail Delivery Report');
    const { message: fields, recipients } = report(dsn.data);
    expect(fields.split('\r\n')[0]).toBe('Original-Envelope-Id: QQ314159');
    expect(fields).toContain('Reporting-MTA: dns; relay.test');
    expect(recipients).toHaveLength(2);
    expect(recipients[0]).toMatch(/^Original-Recipient: rfc822; first@sender\.test\r\nFinal-Recipient: rfc822; a@dest\.test\r\nAction: relayed\r\nStatus: 2\.0\.0\r\nRemote-MTA: dns; mx1\.dest\.test\r\nDiagnostic-Code: smtp; 250 /);
    expect(recipients[1]).toMatch(/^Final-Recipient: rfc822; c@dest\.test\r\nAction: relayed\r\n/);
    expect(dsn.data).not.toContain('rfc822; b@dest.test');
    expect(dsn.data).not.toContain('<b@dest.test>');
    // RET=FULL is for failures: a success report returns the headers only.
    expect(dsn.data).toContain('Content-Type: text/rfc822-headers');
    expect(dsn.data).toContain('Subject: relayed');
    expect(dsn.data).not.toContain('the body text');
    await sleep(300);
    expect(senderMx.messages).toHaveLength(1);
    await waitFor(async () => (await queueFiles(join(r.gw.dir, 'queue'))).length === 0, 5_000, 'empty queue');
  });

  it('a utf-8 ORCPT is reported in its ASCII form (utf-8-addr-xtext)', async () => {
    const dest = await receiver({ config: { smtp: { dsn: false } } });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test'], message('utf8orcpt'), { rcpt: { 'a@dest.test': 'NOTIFY=SUCCESS ORCPT=utf-8;\\x{E9}l\\x{E8}ve@sender.test' } });
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the relayed DSN');
    expect(senderMx.messages[0]!.data).toContain('Original-Recipient: utf-8; \\x{E9}l\\x{E8}ve@sender.test\r\n');
  });

  it('never to the null sender', async () => {
    const dest = await receiver({ config: { smtp: { dsn: false } } });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, postmaster: 'postmaster@sender.test' });
    await sendMail(r.gw.port, '', ['a@dest.test'], message('nullsender'), { rcpt: { 'a@dest.test': 'NOTIFY=SUCCESS' } });
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    await waitFor(async () => (await queueFiles(join(r.gw.dir, 'queue'))).length === 0, 5_000, 'empty queue');
    expect(senderMx.messages).toHaveLength(0);
  });
});

describe.skipIf(!existsSync('/usr/bin/python3'))('relay → aiosmtpd (no DSN)', () => {
  it('sends it no DSN parameters, and the sender gets a "relayed" DSN for NOTIFY=SUCCESS', async () => {
    const port = await closedPort();
    const child = spawn('/usr/bin/python3', [new URL('./aiosmtpd-recorder.py', import.meta.url).pathname, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    cleanup.push(async () => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    });
    await listening(port);
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('aiodsn'), { mail: 'ENVID=aio-1', rcpt: { 'bob@dest.test': 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@dest.test' } });
    const line = await waitFor(() => out.split('\n').find((l) => l.startsWith('{')), 10_000, 'aiosmtpd output');
    const got = JSON.parse(line) as { mail_options: string[]; rcpt_options: string[] };
    expect(got.mail_options.filter((o) => /^(RET|ENVID)=/i.test(o))).toEqual([]);
    expect(got.rcpt_options).toEqual([]);
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the relayed DSN');
    const { message: fields, recipients } = report(senderMx.messages[0]!.data);
    expect(fields).toContain('Original-Envelope-Id: aio-1');
    expect(recipients[0]).toContain('Original-Recipient: rfc822; bob@dest.test\r\nFinal-Recipient: rfc822; bob@dest.test\r\nAction: relayed\r\nStatus: 2.0.0');
  });
});

describe('relay: NOTIFY in our own bounces', () => {
  const refuseBad = { policy: (rcpt: string) => (rcpt.startsWith('bad') ? reject('no such user here', { code: 550, enhanced: '5.1.1' }) : undefined) };

  it('NEVER and a list without FAILURE get no bounce; FAILURE and no NOTIFY do, with the DSN fields', async () => {
    const dest = await receiver({ ...refuseBad, config: { smtp: { dsn: false } } });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bad1@dest.test', 'bad2@dest.test', 'bad3@dest.test', 'bad4@dest.test'], message('notify'), {
      mail: 'ENVID=E-77',
      rcpt: {
        'bad1@dest.test': 'NOTIFY=NEVER',
        'bad2@dest.test': 'NOTIFY=SUCCESS,DELAY',
        'bad3@dest.test': 'NOTIFY=FAILURE ORCPT=rfc822;three@sender.test',
      },
    });
    await waitFor(() => r.events.bounced.length === 1, 10_000, 'the failure');
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    const event = r.events.bounced[0]!;
    expect(event.recipients.map((x) => [x.address, x.suppressed ?? false])).toEqual([
      ['bad1@dest.test', true],
      ['bad2@dest.test', true],
      ['bad3@dest.test', false],
      ['bad4@dest.test', false],
    ]);
    expect(event.bounceId).toBeDefined();
    const { message: fields, recipients } = report(senderMx.messages[0]!.data);
    expect(fields).toMatch(/^Original-Envelope-Id: E-77\r\nReporting-MTA: dns; relay\.test\r\n/);
    expect(recipients).toHaveLength(2);
    expect(recipients[0]).toMatch(/^Original-Recipient: rfc822; three@sender\.test\r\nFinal-Recipient: rfc822; bad3@dest\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\n/);
    expect(recipients[1]).toMatch(/^Final-Recipient: rfc822; bad4@dest\.test\r\nAction: failed\r\n/);
    expect(senderMx.messages[0]!.data).not.toMatch(/bad[12]@dest\.test/);
    await sleep(300);
    expect(senderMx.messages).toHaveLength(1);
    await waitFor(async () => (await queueFiles(join(r.gw.dir, 'queue'))).length === 0, 5_000, 'empty queue');
  });

  it('only NOTIFY=NEVER recipients failed: no bounce at all, and the message leaves the queue', async () => {
    const dest = await receiver(refuseBad);
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bad@dest.test'], message('never'), { rcpt: { 'bad@dest.test': 'NOTIFY=NEVER' } });
    await waitFor(() => r.events.bounced.length === 1, 10_000, 'the failure');
    expect(r.events.bounced[0]!.bounceId).toBeUndefined();
    await waitFor(async () => (await queueFiles(join(r.gw.dir, 'queue'))).length === 0, 5_000, 'empty queue');
    await sleep(300);
    expect(senderMx.messages).toHaveLength(0);
  });

  it.each([
    ['RET=FULL', 'RET=FULL', true],
    ['RET=HDRS', 'RET=HDRS', false],
    ['no RET', '', false],
  ])('%s: the bounce returns %s', async (_w, ret, full) => {
    const dest = await receiver(refuseBad);
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await sendMail(r.gw.port, 'alice@sender.test', ['bad@dest.test'], message('ret', 'the returned body'), ret ? { mail: ret } : {});
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the bounce');
    const data = senderMx.messages[0]!.data;
    expect(data).toContain('Subject: ret');
    if (full) {
      expect(data).toContain('Content-Type: message/rfc822\r\n\r\nReceived: from client.test');
      expect(data).toContain('the returned body');
      expect(data).not.toContain('text/rfc822-headers');
    } else {
      expect(data).toContain('Content-Type: text/rfc822-headers');
      expect(data).not.toContain('the returned body');
    }
  });

  it('DELAY: the delay warning goes only to recipients whose NOTIFY has DELAY (or no NOTIFY)', async () => {
    const dest = await receiver({ policy: () => tempfail('busy', { code: 451, enhanced: '4.3.2' }) });
    const senderMx = await receiver();
    const r = await relayer({
      mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port },
      delayWarning: '300ms',
      retry: { schedule: ['150ms'], maxAge: '20s', jitter: 0 },
    });
    await sendMail(r.gw.port, 'alice@sender.test', ['one@dest.test', 'two@dest.test', 'three@dest.test'], message('delay'), {
      mail: 'ENVID=D1',
      rcpt: { 'one@dest.test': 'NOTIFY=FAILURE', 'two@dest.test': 'NOTIFY=DELAY ORCPT=rfc822;2@sender.test' },
    });
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the warning');
    const { message: fields, recipients } = report(senderMx.messages[0]!.data);
    expect(fields).toContain('Original-Envelope-Id: D1');
    expect(recipients.map((b) => /Final-Recipient: rfc822; (\S+)/.exec(b)![1])).toEqual(['two@dest.test', 'three@dest.test']);
    expect(recipients[0]).toMatch(/^Original-Recipient: rfc822; 2@sender\.test\r\n[\s\S]*Action: delayed/);
    const attempts = r.events.deferred.length;
    await waitFor(() => r.events.deferred.length >= attempts + 2, 10_000, 'more attempts');
    expect(senderMx.messages).toHaveLength(1);
  });

  it('DELAY without delayWarning: no delay notice (the relay sends none unless configured)', async () => {
    const dest = await receiver({ policy: () => tempfail('busy', { code: 451 }) });
    const senderMx = await receiver();
    const r = await relayer({ mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port }, retry: { schedule: ['100ms'], maxAge: '20s', jitter: 0 } });
    await sendMail(r.gw.port, 'alice@sender.test', ['one@dest.test'], message('nodelay'), { rcpt: { 'one@dest.test': 'NOTIFY=DELAY' } });
    await waitFor(() => r.events.deferred.length >= 3, 10_000, 'deferrals');
    expect(senderMx.messages).toHaveLength(0);
  });
});

describe('relay: the queue format', () => {
  it('keeps the DSN parameters in the entry (decoded) while the message waits', async () => {
    const down = await closedPort();
    const r = await relayer({ mxPort: { 'mx1.dest.test': down }, retry: { schedule: ['1h'], maxAge: '1d', jitter: 0 } });
    await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@dest.test'], message('stored'), {
      mail: 'RET=HDRS ENVID=x+2By',
      rcpt: { 'a@dest.test': 'NOTIFY=FAILURE,DELAY ORCPT=rfc822;o+40p' },
    });
    await waitFor(() => r.events.deferred.length === 1, 10_000, 'deferral');
    const dir = join(r.gw.dir, 'queue', 'msg');
    const json = (await readdir(dir)).find((f) => f.endsWith('.json'))!;
    const entry = JSON.parse(await readFile(join(dir, json), 'utf8')) as QueueEntry;
    expect(entry.version).toBe(1);
    expect(entry.dsn).toEqual({ ret: 'HDRS', envid: 'x+y' });
    expect(entry.recipients.map((x) => [x.address, x.notify, x.orcpt])).toEqual([
      ['a@dest.test', ['FAILURE', 'DELAY'], { type: 'rfc822', address: 'o@p' }],
      ['b@dest.test', undefined, undefined],
    ]);
  });

  /** Write a queue entry by hand, as an older version or a crashed process left it. */
  async function plant(entry: Omit<QueueEntry, 'id' | 'created' | 'nextAttempt'>, body: string): Promise<string> {
    const qdir = await mkdtemp(join(tmpdir(), 'relay-dsn-q-'));
    cleanup.push(() => rm(qdir, { recursive: true, force: true }));
    await mkdir(join(qdir, 'msg'), { recursive: true });
    const id = '0000000000ABCDEF01';
    await writeFile(join(qdir, 'msg', `${id}.eml`), body);
    await writeFile(join(qdir, 'msg', `${id}.json`), JSON.stringify({ ...entry, id, created: Date.now(), nextAttempt: Date.now() }));
    return qdir;
  }

  it('an entry written before DSN support (no dsn, notify, orcpt) is delivered and bounced as before', async () => {
    const dest = await receiver({ policy: (rcpt) => (rcpt.startsWith('bad') ? reject('gone', { code: 550, enhanced: '5.1.1' }) : undefined) });
    const senderMx = await receiver();
    const body = message('old-entry').replace(/\r?\n/g, '\r\n');
    const qdir = await plant(
      {
        version: 1,
        sender: 'alice@sender.test',
        attempts: 0,
        size: body.length,
        bodyType: '7BIT',
        smtputf8: false,
        kind: 'message',
        recipients: [
          { address: 'good@dest.test', domain: 'dest.test', status: 'pending', attempts: 0 },
          { address: 'bad@dest.test', domain: 'dest.test', status: 'pending', attempts: 0 },
        ],
      },
      body,
    );
    await relayer({ queueDir: qdir, mxPort: { 'mx1.dest.test': dest.port, 'mx.sender.test': senderMx.port } });
    await waitFor(() => dest.messages.length === 1 && senderMx.messages.length === 1, 10_000, 'delivery and bounce');
    expect(dest.messages[0]!.to).toEqual(['good@dest.test']);
    expect(dest.messages[0]!.dsn).toBeUndefined();
    const dsn = senderMx.messages[0]!.data;
    expect(dsn).toContain('Final-Recipient: rfc822; bad@dest.test');
    expect(dsn).not.toContain('Original-');
    await waitFor(async () => (await queueFiles(qdir)).length === 0, 5_000, 'empty queue');
  });

  it('a "relayed" DSN still owed when the process stopped is sent after the restart', async () => {
    const senderMx = await receiver();
    const body = message('owed').replace(/\r?\n/g, '\r\n');
    const qdir = await plant(
      {
        version: 1,
        sender: 'alice@sender.test',
        attempts: 1,
        size: body.length,
        bodyType: '7BIT',
        smtputf8: false,
        kind: 'message',
        dsn: { envid: 'OWED-1' },
        recipients: [
          { address: 'a@dest.test', domain: 'dest.test', status: 'delivered', attempts: 1, notified: false, notify: ['SUCCESS'], remoteMta: 'mx1.dest.test', response: '250 2.0.0 Ok: queued as X' },
        ],
      },
      body,
    );
    await relayer({ queueDir: qdir, mxPort: { 'mx.sender.test': senderMx.port } });
    await waitFor(() => senderMx.messages.length === 1, 10_000, 'the relayed DSN');
    const { message: fields, recipients } = report(senderMx.messages[0]!.data);
    expect(fields).toContain('Original-Envelope-Id: OWED-1');
    expect(recipients[0]).toMatch(/Action: relayed\r\nStatus: 2\.0\.0\r\nRemote-MTA: dns; mx1\.dest\.test\r\nDiagnostic-Code: smtp; 250 2\.0\.0 Ok: queued as X/);
    await waitFor(async () => (await queueFiles(qdir)).length === 0, 5_000, 'empty queue');
  });
});
