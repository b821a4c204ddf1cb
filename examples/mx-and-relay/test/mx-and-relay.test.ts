/**
 * examples/mx-and-relay/gateway.yaml as an admin runs it (`mailgate serve`): a local
 * user sends out through the gateway, the next hop (a second Mailgate on loopback,
 * found by MX through a DNS server on loopback) refuses a recipient, and the bounce
 * lands in the sender's own Maildir, read back with Python's `mailbox` module. A
 * bounce to a sender with no mailbox goes to the postmaster as a double bounce. A
 * message with NOTIFY=SUCCESS delivered into a local Maildir gets a "delivered" DSN,
 * filed into a local sender's Maildir or relayed to a remote one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accept, definePlugin, reject } from '@mailgate/core';
import { freePort, startMailgate, startTestDnsServer, startTestGateway, type MailgateProcess, type TestDnsServer, type TestGateway } from '@mailgate/core/testing';

const ROOT = resolve(import.meta.dirname, '../../..');
const CONFIG = 'examples/mx-and-relay/gateway.yaml';
const PYTHON = '/usr/bin/python3';
const built = ['core/dist/cli.js', 'plugin-acl/dist/index.js', 'plugin-maildir/dist/index.js', 'plugin-relay/dist/index.js'].every((f) => existsSync(join(ROOT, 'packages', f)));
if (!built) console.warn('mx-and-relay example: needs the build (npx turbo run build); skipped');

describe.skipIf(!built)('local mailboxes + outbound relay in one gateway', () => {
  let dns: TestDnsServer;
  let nextHop: TestGateway;
  const received: Array<{ from: string; to: string[] }> = [];
  let work: string;
  let mailgate: MailgateProcess | undefined;
  let port: number;

  beforeAll(async () => {
    dns = await startTestDnsServer({
      'remote.test': { MX: [{ exchange: 'mx.remote.test', priority: 10 }] },
      'mx.remote.test': { A: ['127.0.0.1'] },
    });
    // The remote site's MX: knows carol, refuses everyone else.
    nextHop = await startTestGateway({ hostname: 'mx.remote.test', listen: [{ host: '127.0.0.1', port: await freePort() }] }, (g) =>
      g.use(
        definePlugin({
          name: 'remote-mailboxes',
          setup({ tap }) {
            tap('claim', (_s, _tx, rcpt) => (rcpt.text === 'carol@remote.test' ? accept() : reject('No such user here', { code: 550, enhanced: '5.1.1' })));
            tap('queue', (_s, tx) => void received.push({ from: tx.senderText, to: tx.recipients.map((r) => r.text) }));
          },
        }),
      ),
    );
    work = mkdtempSync(join(tmpdir(), 'mg-mx-relay-'));
    const env = { DNS_SERVER: dns.address, MAILDIR_ROOT: join(work, 'maildir'), QUEUE_DIR: join(work, 'queue'), RELAY_PORT: String(nextHop.port), ALLOW_LOOPBACK_MX: 'true' };
    port = await freePort();
    mailgate = await startMailgate(['serve', '-c', CONFIG, '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], { cwd: ROOT, env });
  }, 30_000);

  afterAll(async () => {
    await mailgate?.stop();
    await nextHop?.close();
    await dns?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const send = (from: string, to: string[], subject: string, dsn?: { notify: 'success'[] }) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'webmail.example.test' })
      .sendMail({ from, to, subject, text: 'Hello.', envelope: { from, to }, ...(dsn ? { dsn } : {}) });

  /** The messages in a user's Maildir, as Python's mailbox.Maildir reads them: envelope-ish headers and the body text. */
  const mailbox = (user: string): Array<{ returnPath: string; deliveredTo: string; subject: string; received: string; text: string }> => {
    const dir = join(work, 'maildir/example.test', user);
    if (!existsSync(join(dir, 'new'))) return [];
    const script = `
import json, mailbox, sys
out = []
for key, m in mailbox.Maildir(sys.argv[1], factory=None).items():
    out.append({'returnPath': m['Return-Path'] or '', 'deliveredTo': m['Delivered-To'] or '', 'subject': m['Subject'] or '',
                'received': (m.get_all('Received') or [''])[0], 'text': m.as_bytes().decode('utf-8', 'replace')})
print(json.dumps(out))`;
    const r = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as ReturnType<typeof mailbox>;
  };

  const until = async <T>(what: string, fn: () => T | undefined | false, timeout = 15_000): Promise<T> => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${mailgate?.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('relays a local user\'s mail out by MX', async () => {
    await send('alice@example.test', ['carol@remote.test'], 'out');
    await until('delivery to the remote MX', () => received.find((m) => m.to.includes('carol@remote.test')));
    expect(received.find((m) => m.to.includes('carol@remote.test'))!.from).toBe('alice@example.test');
  });

  it.skipIf(!existsSync(PYTHON))('delivers the bounce of a refused recipient into the sender\'s own Maildir', async () => {
    await send('bob@example.test', ['nobody@remote.test'], 'to nobody');
    const [bounce] = await until('the bounce in bob\'s Maildir', () => {
      const m = mailbox('bob');
      return m.length > 0 && m;
    });
    expect(bounce!.returnPath).toBe('<>');
    expect(bounce!.deliveredTo).toBe('bob@example.test');
    // handed to the local mailbox by the gateway itself, not sent to itself over SMTP
    expect(bounce!.received.replace(/\s+/g, ' ')).toMatch(/^by mx\.example\.test \(Mailgate\) id I[0-9A-Z]+\.1 for <bob@example\.test>;/);
    expect(bounce!.text).toContain('Content-Type: multipart/report; report-type=delivery-status');
    expect(bounce!.text).toMatch(/Final-Recipient: rfc822; ?nobody@remote\.test/);
    expect(bounce!.text).toMatch(/Action: failed/);
    expect(bounce!.text).toMatch(/Status: 5\.1\.1/);
    expect(bounce!.text).toContain('No such user here');
    expect(bounce!.text).toContain('Subject: to nobody');
    // the queue is empty again: the message and its bounce are both done
    await until('an empty queue', () => readdirSync(join(work, 'queue/msg')).filter((n) => !n.startsWith('.')).length === 0);
  });

  it.skipIf(!existsSync(PYTHON))('NOTIFY=SUCCESS to a local user: the "delivered" DSN lands in the sender\'s own Maildir', async () => {
    await send('alice@example.test', ['bob@example.test'], 'please confirm', { notify: ['success'] });
    const report = await until('the delivered DSN in alice\'s Maildir', () => mailbox('alice').find((m) => m.text.includes('Subject: please confirm')));
    expect(report.returnPath).toBe('<>');
    expect(report.subject).toBe('Successful Mail Delivery Report');
    expect(report.text).toContain('Content-Type: multipart/report; report-type=delivery-status');
    expect(report.text).toMatch(/Final-Recipient: rfc822; ?bob@example\.test/);
    expect(report.text).toMatch(/Action: delivered/);
    expect(report.text).toMatch(/Status: 2\.0\.0/);
    expect(mailbox('bob').filter((m) => m.subject === 'please confirm')).toHaveLength(1);
  });

  it('NOTIFY=SUCCESS from a remote sender: plugin-relay takes the "delivered" DSN out by MX', async () => {
    await send('carol@remote.test', ['bob@example.test'], 'from carol', { notify: ['success'] });
    await until('the delivered DSN at the remote MX', () => received.find((m) => m.from === '' && m.to.includes('carol@remote.test')));
  });

  it.skipIf(!existsSync(PYTHON))('a bounce to a sender without a mailbox goes to the postmaster as a double bounce', async () => {
    await send('ghost@example.test', ['nobody@remote.test'], 'from a ghost');
    const double = await until('the double bounce in postmaster\'s Maildir', () => mailbox('postmaster').find((m) => m.text.includes('ghost@example.test')));
    expect(double.returnPath).toBe('<>');
    expect(double.text).toMatch(/Final-Recipient: rfc822; ?ghost@example\.test/);
    expect(double.text).toMatch(/Status: 5\.1\.1/);
    expect(mailbox('ghost')).toEqual([]);
  });
});
