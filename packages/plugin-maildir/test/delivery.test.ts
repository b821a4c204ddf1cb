import { execFile } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { definePlugin } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import maildirPlugin from '@mailgate/plugin-maildir';
import { z } from 'zod';
import { PYTHON, readMaildir, send, splitDelivered, startMaildirGateway, type MaildirGateway } from './helpers.js';

const run = promisify(execFile);

const NAME_RE = /^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,/]+),S=(\d+)$/;

function message(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: <sender@client.test>\r\nTo: <bob@example.test>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@client.test>\r\n\r\n${body}`);
}

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

let gw: MaildirGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('delivery over SMTP, read back with Python mailbox.Maildir', () => {
  it('stores the exact bytes with Return-Path, Delivered-To and the Received header, under a Maildir name with S=', async () => {
    gw = await startMaildirGateway();
    const body = 'Line one\r\n.starts with a dot\r\n..two dots\r\n\r\nUTF-8 bytes: \u00e9\u00e8\r\n';
    const sent = message('exact bytes', body);
    const r = await send(gw.port, 'sender@client.test', ['bob@example.test'], sent);
    expect(r.rcpt).toEqual([250]);
    expect(r.data?.code).toBe(250);

    const stored = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(stored).toHaveLength(1);
    const m = stored[0]!;
    expect(m.subdir).toBe('new');
    const { added, received } = splitDelivered(m.bytes, sent);
    expect(added).toBe('Return-Path: <sender@client.test>\r\nDelivered-To: bob@example.test\r\n');
    expect(received).toMatch(/^Received: from client\.test \(.*\r\n$/s);
    const parts = NAME_RE.exec(m.name);
    expect(parts).not.toBeNull();
    expect(Number(parts![3])).toBe(process.pid);
    expect(Number(parts![6])).toBe(m.bytes.length);
    expect(Math.abs(Number(parts![1]) - Date.now() / 1000)).toBeLessThan(60);
    // nothing left in tmp/, and the Maildir has its three directories
    expect(await readdir(join(gw.root, 'example.test/bob/tmp'))).toEqual([]);
    expect((await readdir(join(gw.root, 'example.test/bob'))).sort()).toEqual(['cur', 'new', 'tmp']);
  });

  it('works with nodemailer, swaks and Python smtplib as clients', async () => {
    gw = await startMaildirGateway();
    const port = gw.port;
    // nodemailer, raw message (sent as is, dot-stuffed on the wire)
    const viaNodemailer = message('via nodemailer', 'nodemailer body\r\n.leading dot\r\n');
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'nodemailer.test' });
    const info = await transport.sendMail({ envelope: { from: 'nm@client.test', to: ['alice@example.test'] }, raw: viaNodemailer });
    expect(info.accepted).toEqual(['alice@example.test']);
    transport.close();

    // swaks, DATA from a file with LF line endings (swaks sends CRLF and ends the last line itself)
    const viaSwaks = message('via swaks', 'swaks body\r\n');
    const file = join(gw.dir, 'swaks.eml');
    await writeFile(file, viaSwaks.toString().replace(/\r\n/g, '\n').replace(/\n$/, ''));
    await run('swaks', ['--server', '127.0.0.1', '--port', String(port), '--from', 'sw@client.test', '--to', 'alice@example.test', '--helo', 'swaks.test', '--data', `@${file}`, '--silent', '2']);

    // Python smtplib
    const viaPython = message('via smtplib', 'python body\r\n');
    const script = `import smtplib, sys\ns = smtplib.SMTP('127.0.0.1', ${port})\ns.sendmail('py@client.test', ['alice@example.test'], sys.stdin.buffer.read())\ns.quit()\n`;
    await new Promise<void>((resolve, reject) => {
      const child = execFile(PYTHON, ['-c', script], (error) => (error ? reject(error) : resolve()));
      child.stdin!.end(viaPython);
    });

    const stored = await readMaildir(join(gw.root, 'example.test/alice'));
    expect(stored).toHaveLength(3);
    const bySender = new Map(stored.map((m) => [/^Return-Path: <([^>]*)>/.exec(m.bytes.toString())![1], m.bytes]));
    splitDelivered(bySender.get('nm@client.test')!, viaNodemailer);
    splitDelivered(bySender.get('sw@client.test')!, viaSwaks);
    splitDelivered(bySender.get('py@client.test')!, viaPython);
  });

  it('delivers a large message by streaming it, byte for byte', async () => {
    gw = await startMaildirGateway({}, { limits: { maxMessageSize: '32MB' } });
    const line = `${'x'.repeat(76)}\r\n`;
    const sent = Buffer.concat([message('large', ''), Buffer.from(line.repeat(40_000))]); // ~3 MB, spooled to a file
    const r = await send(gw.port, 'sender@client.test', ['bob@example.test'], sent);
    expect(r.data?.code).toBe(250);
    const [m] = await readMaildir(join(gw.root, 'example.test/bob'));
    splitDelivered(m!.bytes, sent);
    expect(Number(NAME_RE.exec(m!.name)![6])).toBe(m!.bytes.length);
  });

  it('refuses unknown users at RCPT with 550 5.1.1 and unsafe addresses with 550 5.1.3', async () => {
    gw = await startMaildirGateway({ mailboxes: ['bob@example.test'] });
    const c = await send(gw.port, 's@client.test', ['nobody@example.test', '"../x"@example.test', 'bob@example.test', 'x@elsewhere.test'], message('refusals'));
    expect(c.rcpt).toEqual([550, 550, 250, 554]);
    expect(c.replies[1]).toMatch(/^550 5\.1\.1 /);
    expect(c.replies[2]).toMatch(/^550 5\.1\.3 /);
    expect(c.replies[4]).toMatch(/^554 5\.7\.1 /);
    expect(c.data?.code).toBe(250);
    expect(await readdir(gw.root)).toEqual(['example.test']);
    expect(await readdir(join(gw.root, 'example.test'))).toEqual(['bob']);
  });

  it('gives each recipient its own Delivered-To, and hard-links one file when the added headers are the same', async () => {
    gw = await startMaildirGateway();
    const sent = message('two recipients');
    const r = await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test', 'Bob@EXAMPLE.test'], sent);
    expect(r.rcpt).toEqual([250, 250, 250]);
    const [a] = await readMaildir(join(gw.root, 'example.test/alice'));
    const bob = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(bob).toHaveLength(1); // the same mailbox twice in one transaction gets one copy
    expect(splitDelivered(a!.bytes, sent).added).toContain('Delivered-To: alice@example.test\r\n');
    expect(splitDelivered(bob[0]!.bytes, sent).added).toContain('Delivered-To: bob@example.test\r\n');
    await gw.close();

    gw = await startMaildirGateway({ deliveredTo: false });
    await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test', 'carol@example.test'], sent);
    const inodes = new Set<number>();
    for (const user of ['alice', 'bob', 'carol']) {
      const dir = join(gw.root, 'example.test', user, 'new');
      const [name] = await readdir(dir);
      const st = await stat(join(dir, name!));
      inodes.add(st.ino);
      expect(st.nlink).toBe(3);
      expect(splitDelivered(await readFile(join(dir, name!)), sent).added).toBe('Return-Path: <s@client.test>\r\n');
    }
    expect(inodes.size).toBe(1);
  });

  it('aliases (one to many, via another alias), catch-all and Delivered-To original', async () => {
    gw = await startMaildirGateway({
      mailboxes: ['alice@example.test', 'bob@example.test', 'admin@example.test'],
      aliases: { 'team@example.test': ['alice', 'sales@example.test'], sales: 'bob' },
      catchAll: { 'example.test': 'admin' },
      deliveredTo: 'original',
    });
    const sent = message('alias');
    const r = await send(gw.port, '', ['Team@example.test', 'whoever@example.test'], sent);
    expect(r.rcpt).toEqual([250, 250]);
    expect(r.data?.code).toBe(250);
    const alice = await readMaildir(join(gw.root, 'example.test/alice'));
    const bob = await readMaildir(join(gw.root, 'example.test/bob'));
    const admin = await readMaildir(join(gw.root, 'example.test/admin'));
    expect([alice.length, bob.length, admin.length]).toEqual([1, 1, 1]);
    expect(splitDelivered(alice[0]!.bytes, sent).added).toBe('Return-Path: <>\r\nDelivered-To: Team@example.test\r\n');
    expect(splitDelivered(admin[0]!.bytes, sent).added).toBe('Return-Path: <>\r\nDelivered-To: whoever@example.test\r\n');
    // alice and bob got the same bytes: one file, two links
    expect((await stat(join(gw.root, 'example.test/alice/new', alice[0]!.name))).ino).toBe((await stat(join(gw.root, 'example.test/bob/new', bob[0]!.name))).ino);
  });

  it('sub-addressing: user+tag@ goes to the user, into the Maildir++ folder .tag when asked', async () => {
    gw = await startMaildirGateway({ subaddress: { separator: '+', folder: true, createFolder: true } });
    const sent = message('subaddress');
    const r = await send(gw.port, 's@client.test', ['bob+lists@example.test', 'bob+a.b@example.test', '"bob+../x"@example.test', 'bob@example.test'], sent);
    // "a.b" is no safe folder name: INBOX; a "/" anywhere in the address is refused
    expect(r.rcpt).toEqual([250, 250, 550, 250]);
    expect(r.replies[3]).toMatch(/^550 5\.1\.3 /);
    const all = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(all.map((m) => m.folder).sort()).toEqual(['', 'lists']);
    const inFolder = all.find((m) => m.folder === 'lists')!;
    expect(splitDelivered(inFolder.bytes, sent).added).toContain('Delivered-To: bob+lists@example.test\r\n');
    // bob+a.b@ and bob@ both lead to INBOX: one copy
    expect(await readFile(join(gw.root, 'example.test/bob/.lists/maildirfolder'), 'utf8')).toBe('');
  });

  it('sub-addressing without createFolder uses an existing folder only', async () => {
    gw = await startMaildirGateway({ subaddress: { folder: true } });
    await send(gw.port, 's@client.test', ['bob@example.test'], message('first'));
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(gw.root, 'example.test/bob/.work'));
    const r = await send(gw.port, 's@client.test', ['bob+work@example.test', 'bob+play@example.test'], message('second'));
    expect(r.data?.code).toBe(250);
    const all = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(all.map((m) => m.folder).sort()).toEqual(['', '', 'work']);
    expect((await readdir(join(gw.root, 'example.test/bob'))).sort()).toEqual(['.work', 'cur', 'new', 'tmp']);
  });

  it('spamFolder: mail a filter before it flagged goes to .Junk of every mailbox, the rest as usual', async () => {
    // a stand-in for plugin-spam: flags messages whose subject says so, at `data` as it does
    const flagger = definePlugin({
      name: 'test-flagger',
      options: z.strictObject({}),
      setup({ tap }) {
        tap('data', async (_session, tx) => {
          const head = (await readStream(tx.message!.stream())).toString('latin1');
          const flagged = /^Subject: SPAM/m.test(head);
          tx.data.spam = { score: flagged ? 9 : 0, flagged };
          return undefined;
        });
      },
    });
    let root = '';
    gw = Object.assign(
      await startTestGateway({}, async (gateway, dir) => {
        root = join(dir, 'mail');
        await gateway.use(flagger, {});
        await gateway.use(maildirPlugin, { root, domains: ['example.test'], spamFolder: 'Junk', subaddress: { folder: true, createFolder: true } });
      }),
      { root: '' },
    );
    gw.root = root;
    const spam = message('SPAM offer');
    expect((await send(gw.port, 's@client.test', ['bob@example.test', 'bob+lists@example.test', 'alice@example.test'], spam)).data?.code).toBe(250);
    expect((await send(gw.port, 's@client.test', ['bob+lists@example.test', 'alice@example.test'], message('ham'))).data?.code).toBe(250);
    const bob = await readMaildir(join(root, 'example.test/bob'));
    const alice = await readMaildir(join(root, 'example.test/alice'));
    // the spam: once per mailbox, in .Junk (also for bob+lists@, which would have gone to .lists)
    expect(bob.map((m) => `${m.folder}:${m.bytes.includes('SPAM offer')}`).sort()).toEqual(['Junk:true', 'lists:false']);
    expect(alice.map((m) => `${m.folder}:${m.bytes.includes('SPAM offer')}`).sort()).toEqual([':false', 'Junk:true']);
    const junk = bob.find((m) => m.folder === 'Junk')!;
    expect(splitDelivered(junk.bytes, spam).added).toMatch(/^Return-Path: <s@client\.test>\r\nDelivered-To: bob@example\.test\r\n$/);
    expect(await readFile(join(root, 'example.test/alice/.Junk/maildirfolder'), 'utf8')).toBe('');
  });

  it('spamFolder must be a plain folder name', async () => {
    const { maildirOptionsSchema } = await import('../src/options.js');
    for (const bad of ['../x', '.Junk', 'a/b', '', 'Junk.Sub']) {
      expect(maildirOptionsSchema.safeParse({ root: '/tmp/x', domains: ['example.test'], spamFolder: bad }).success, bad).toBe(false);
    }
    expect(maildirOptionsSchema.safeParse({ root: '/tmp/x', domains: ['example.test'], spamFolder: 'Junk' }).success).toBe(true);
  });

  it('creates files and directories with the configured modes', async () => {
    gw = await startMaildirGateway({ fileMode: '0640', dirMode: '2750' });
    await send(gw.port, 's@client.test', ['bob@example.test'], message('modes'));
    const dir = join(gw.root, 'example.test/bob');
    const [name] = await readdir(join(dir, 'new'));
    expect((await stat(join(dir, 'new', name!))).mode & 0o7777).toBe(0o640);
    for (const d of [gw.root, join(gw.root, 'example.test'), dir, join(dir, 'new'), join(dir, 'tmp'), join(dir, 'cur')]) {
      expect((await stat(d)).mode & 0o7777, d).toBe(0o2750);
    }
  });

  it('mailboxExists: only existing mailbox directories are known', async () => {
    gw = await startMaildirGateway({ mailboxExists: true });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(gw.root, 'example.test/carol'), { recursive: true });
    const r = await send(gw.port, 's@client.test', ['carol@example.test', 'dave@example.test'], message('exists'));
    expect(r.rcpt).toEqual([250, 550]);
    expect(r.replies[2]).toMatch(/^550 5\.1\.1 /);
    expect(await readMaildir(join(gw.root, 'example.test/carol'))).toHaveLength(1);
  });

  it('bare <postmaster> is delivered as postmaster@ the first domain', async () => {
    gw = await startMaildirGateway({ aliases: { postmaster: 'bob' } });
    const r = await send(gw.port, 's@client.test', ['postmaster'], message('postmaster'));
    expect(r.rcpt).toEqual([250]);
    const [m] = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(m!.bytes.toString()).toContain('Delivered-To: bob@example.test\r\n');
  });

  it('single-mailbox mode with "*" takes every recipient of every domain into one Maildir', async () => {
    gw = await startMaildirGateway((root) => ({ root: undefined, mailbox: join(root, 'all'), domains: '*' }));
    const sent = message('single');
    const r = await send(gw.port, 's@client.test', ['a@one.test', 'b@two.test', '"odd ../ name"@three.test'], sent);
    expect(r.rcpt).toEqual([250, 250, 250]);
    const stored = await readMaildir(join(gw.root, 'all'));
    expect(stored).toHaveLength(1); // one Maildir written once per message
    expect(splitDelivered(stored[0]!.bytes, sent).added).toBe('Return-Path: <s@client.test>\r\nDelivered-To: a@one.test\r\n');
  });

  it('claims at RCPT (claimedBy, audit trail) and leaves other domains to other storage plugins', async () => {
    const { startTestGateway } = await import('@mailgate/core/testing');
    const { discardPlugin } = await import('./discard.js');
    const seen: string[] = [];
    const t = await startTestGateway({}, async (g, dir) => {
      await g.use(maildirPlugin, { root: join(dir, 'mail'), domains: ['example.test'] });
      await g.use(discardPlugin, { domains: ['other.test'] });
      g.hooks.queue.tap('spy', (_s, tx) => {
        for (const r of tx.recipients) seen.push(`${r.text} ${r.claimedBy} ${JSON.stringify(tx.audit.filter((a) => a.recipient === r.text).map((a) => a.verdict))}`);
      });
    });
    try {
      const r = await send(t.port, 's@client.test', ['bob@example.test', 'x@other.test'], message('claims'));
      expect(r.data?.code).toBe(250);
      expect(seen).toEqual(['bob@example.test @mailgate/plugin-maildir ["claim"]', 'x@other.test discard ["claim"]']);
      expect(await readMaildir(join(t.dir, 'mail/example.test/bob'))).toHaveLength(1);
      expect(await readdir(join(t.dir, 'mail'))).toEqual(['example.test']);
    } finally {
      await t.close();
    }
  });
});
