/**
 * examples/spam-gateway/gateway.yaml as an admin runs it: `mailgate spam train` on
 * corpus mail, `mailgate serve`, real clients, and the Maildir read back. A DNS server
 * on loopback stands in for Spamhaus and the local resolver: it lists 127.0.0.2 in ZEN
 * (the test entry RFC 5782 requires of every list) and spamhaus-test.example in the DBL.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, MAILGATE_BIN, startMailgate, startTestDnsServer, type MailgateProcess, type TestDnsServer } from '@mailgate/core/testing';

const ROOT = resolve(import.meta.dirname, '../../..');
const CONFIG = 'examples/spam-gateway/gateway.yaml';
const CORPUS = resolve(ROOT, '../shared/data/spamassassin-public-corpus/sa-public-corpus-5groups.tar.gz');
const SWAKS = '/usr/bin/swaks';
const built = ['core/dist/cli.js', 'plugin-acl/dist/index.js', 'plugin-maildir/dist/index.js', 'plugin-spam/dist/index.js'].every((f) => existsSync(join(ROOT, 'packages', f)));
if (!built) console.warn('spam-gateway example: needs the build (npx turbo run build); skipped');
if (!existsSync(CORPUS)) console.warn(`spam-gateway example: ${CORPUS} is missing; skipped`);

describe.skipIf(!built || !existsSync(CORPUS))('the spam-filtering MX example', () => {
  let dns: TestDnsServer;
  let work: string;
  let mailgate: MailgateProcess | undefined;
  let port: number;
  let env: NodeJS.ProcessEnv;
  const heldOut: { spam: string[]; ham: string[] } = { spam: [], ham: [] };

  beforeAll(async () => {
    dns = await startTestDnsServer({
      '2.0.0.127.zen.spamhaus.org': { A: ['127.0.0.2', '127.0.0.10'] },
      'spamhaus-test.example.dbl.spamhaus.org': { A: ['127.0.1.2'] },
    });
    work = mkdtempSync(join(tmpdir(), 'mg-spam-example-'));
    env = { ...process.env, DNS_SERVER: dns.address, MAILDIR_ROOT: join(work, 'maildir'), BAYES_FILE: join(work, 'bayes.db') };
    const tar = spawnSync('tar', ['-xzf', CORPUS, '-C', work, '--wildcards', 'spam-2/00[0-3]*', 'easy-ham-1/00[0-3]*']);
    expect(tar.status).toBe(0);
    // Train on all but the last few of each, which are sent through the gateway below.
    const files = (dir: string) => readdirSync(join(work, dir)).sort().map((f) => join(work, dir, f));
    const spam = files('spam-2');
    const ham = files('easy-ham-1');
    heldOut.spam = spam.splice(-5);
    heldOut.ham = ham.splice(-5);
    const train = spawnSync(process.execPath, [MAILGATE_BIN, 'spam', 'train', '-c', CONFIG, '--spam', ...spam, '--ham', ...ham], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(train.stderr).toBe('');
    expect(train.stdout).toMatch(/^\d+ learned, /);
    expect(spam.length).toBeGreaterThanOrEqual(200);
    expect(ham.length).toBeGreaterThanOrEqual(200);

    port = await freePort();
    mailgate = await startMailgate(['serve', '-c', CONFIG, '--listen', `127.0.0.1:${port}`], { cwd: ROOT, env });
  }, 90_000);

  afterAll(async () => {
    await mailgate?.stop();
    await dns?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const send = (raw: Buffer, localAddress = '127.0.0.1', to = 'alice@example.test') =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port, localAddress, secure: false, ignoreTLS: true, name: 'client.example.org' })
      .sendMail({ envelope: { from: 'someone@sender.example', to: [to] }, raw });

  const delivered = (user: string, folder = '') => {
    const dir = join(work, 'maildir/example.test', user, folder, 'new');
    return existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1')) : [];
  };
  /** The header section, unfolded, with LF line ends. */
  const head = (message: string) => {
    const text = message.replace(/\r\n/g, '\n');
    const end = text.indexOf('\n\n');
    return (end < 0 ? text : text.slice(0, end)).replace(/\n[ \t]+/g, ' ');
  };

  it.skipIf(!existsSync(SWAKS))('refuses a client listed in ZEN at RCPT', async () => {
    // Not spawnSync: the DNS server runs in this process and must answer meanwhile.
    const swaks = spawn(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--local-interface', '127.0.0.2', '--to', 'alice@example.test', '--from', 'a@sender.example', '--timeout', '15']);
    let stdout = '';
    swaks.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    await new Promise((done) => swaks.once('close', done));
    const r = { stdout };
    expect(r.stdout).toMatch(/<\*\* +550 5\.7\.1 Service unavailable; client \[127\.0\.0\.2\] blocked using zen\.spamhaus\.org/);
    expect(delivered('alice')).toHaveLength(0);
  });

  it('tags held-out spam with X-Spam-Flag and delivers held-out ham untagged', async () => {
    for (const file of heldOut.spam) await send(readFileSync(file), '127.0.0.1', 'spamtrap@example.test');
    for (const file of heldOut.ham) await send(readFileSync(file), '127.0.0.1', 'bob@example.test');
    // plugin-maildir's spamFolder: flagged mail is filed into .Junk, the rest into INBOX
    const junk = delivered('spamtrap', '.Junk');
    const spam = [...junk, ...delivered('spamtrap')];
    const ham = delivered('bob');
    expect(spam).toHaveLength(5);
    expect(ham).toHaveLength(5);
    expect(delivered('bob', '.Junk')).toHaveLength(0);
    const flagged = (messages: string[]) => messages.filter((m) => /^X-Spam-Flag: YES$/m.test(head(m))).length;
    expect(junk.length).toBeGreaterThanOrEqual(4);
    expect(flagged(junk)).toBe(junk.length);
    expect(flagged(delivered('spamtrap'))).toBe(0);
    expect(flagged(ham)).toBe(0);
    for (const m of [...spam, ...ham]) {
      expect(head(m)).toMatch(/^X-Spam-Status: (Yes|No), score=-?\d+\.\d required=5\.0 tests=/m);
      expect(head(m)).toMatch(/^X-Spam-Report: Content analysis details/m);
      expect(head(m)).toMatch(/^Received-SPF: none /m);
    }
  });
});
