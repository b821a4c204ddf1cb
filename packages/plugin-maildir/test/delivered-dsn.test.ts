/**
 * The "delivered" DSN (RFC 3461 §5.2.2.1, RFC 3464): a recipient delivered into its
 * Maildir whose RCPT had NOTIFY=SUCCESS is reported to the sender (`Action: delivered`,
 * `Status: 2.0.0`), in one report per transaction, sent through the gateway itself
 * (`gateway.submit()`): a local sender finds it in its own Maildir. End to end, over
 * SMTP (the core's test client and nodemailer), read with Python's mailbox module and
 * parsed with postal-mime.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import PostalMime from 'postal-mime';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, definePlugin, Recipient, tempfail, Transaction } from '@mailgate/core';
import { SmtpTestClient, startTestGateway, type TestGateway } from '@mailgate/core/testing';
import maildirPlugin, { type MaildirOptionsInput } from '@mailgate/plugin-maildir';
import { z } from 'zod';
import { successNotices } from '../src/plugin.js';
import { dataBlock, readMaildir, type StoredMessage } from './helpers.js';

/** Declares local domains the way plugin-acl's `localDomains` does. */
const localDomainsPlugin = definePlugin({
  name: 'local-domains',
  options: z.strictObject({ localDomains: z.array(z.string()) }),
  setup({ options, gateway }) {
    for (const d of options.localDomains) gateway.addLocalDomain(d);
  },
});

interface Gw extends TestGateway {
  root: string;
  logs: Array<Record<string, unknown>>;
  mailbox(user: string): Promise<StoredMessage[]>;
}

let gw: Gw | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(maildir: Omit<MaildirOptionsInput, 'root'> = {}, after?: ReturnType<typeof definePlugin>): Promise<Gw> {
  let root = '';
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'info', format: 'json', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const t = await startTestGateway(
    { hostname: 'mx.example.test' },
    async (gateway, dir) => {
      root = join(dir, 'var/maildir');
      await gateway.use(localDomainsPlugin, { localDomains: ['example.test'] });
      await gateway.use(maildirPlugin, { root, ...maildir } as MaildirOptionsInput);
      if (after) await gateway.use(after, {});
    },
    { logger },
  );
  return Object.assign(t, { root, logs, mailbox: async (user: string) => (existsSync(join(root, 'example.test', user)) ? readMaildir(join(root, 'example.test', user)) : []) });
}

/** A storage step after the Maildir that takes `ms` over the gateway's own submissions (the reports). */
function slowReportStore(ms: number) {
  return definePlugin({
    name: 'slow-report-store',
    options: z.strictObject({}),
    setup({ tap }) {
      tap('queue', async (session) => {
        if (session.internal) await new Promise((r) => setTimeout(r, ms));
      }, { timeout: ms + 5_000 });
    },
  });
}

const ORIGINAL = Buffer.from('From: Alice <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: lunch?\r\nMessage-ID: <lunch@example.test>\r\n\r\nAt noon.\r\n');

/** One transaction with raw commands; the client waits for QUIT's reply (the report is then built and on its way). */
async function send(from: string, rcpts: string[], mailParams = ''): Promise<{ codes: number[]; data: number }> {
  const c = await SmtpTestClient.connect(gw!.port);
  try {
    await c.read();
    const codes: number[] = [];
    for (const line of ['EHLO client.example.test', `MAIL FROM:<${from}>${mailParams}`, ...rcpts.map((r) => `RCPT TO:${r}`)]) codes.push((await c.command(line)).code);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(dataBlock(ORIGINAL));
    const data = (await c.read(20_000)).code;
    await c.command('QUIT');
    return { codes, data };
  } finally {
    c.close();
  }
}

/** A report in `messages`: its parsed parts and its delivery-status groups as field maps. */
async function report(stored: StoredMessage) {
  const mail = await PostalMime.parse(stored.bytes, { forceRfc822Attachments: true });
  const text = (i: number) => {
    const c = mail.attachments[i]!.content;
    return typeof c === 'string' ? c : Buffer.from(c as ArrayBuffer).toString('utf8');
  };
  const status = text(0);
  const [perMessage, ...groups] = status.replace(/\r\n/g, '\n').trim().split(/\n\n+/);
  const fields = (block: string) => new Map(block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as const));
  return { mail, perMessage: fields(perMessage!), groups: groups.map(fields), headers: text(1), raw: stored.bytes.toString('utf8') };
}

describe('a "delivered" DSN for NOTIFY=SUCCESS', () => {
  it('RCPT NOTIFY=SUCCESS ORCPT=…: the sender gets a multipart/report, Action: delivered, Status: 2.0.0', async () => {
    gw = await start();
    const r = await send('alice@example.test', ['<bob@example.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.test'], ' ENVID=lunch-42');
    expect(r).toEqual({ codes: [250, 250, 250], data: 250 });
    expect(await gw.mailbox('bob')).toHaveLength(1);
    const inbox = await arrived('alice');
    expect(inbox).toHaveLength(1);
    const dsn = await report(inbox[0]!);
    // delivered from <>, like any bounce
    expect(dsn.raw).toMatch(/^Return-Path: <>\r\n/);
    expect(dsn.mail.from?.address).toBe('MAILER-DAEMON@mx.example.test');
    expect(dsn.mail.to?.[0]?.address).toBe('alice@example.test');
    expect(dsn.mail.subject).toBe('Successful Mail Delivery Report');
    expect(dsn.mail.headers.find((h) => h.key === 'content-type')!.value).toMatch(/^multipart\/report; report-type=delivery-status;/);
    expect(dsn.mail.headers.find((h) => h.key === 'auto-submitted')!.value).toBe('auto-replied');
    expect(dsn.mail.text).toContain('Your message was successfully delivered to the destination(s) listed below.');
    expect(dsn.mail.text).toContain('<bob@example.test>: delivered to maildir');
    expect(dsn.mail.attachments.map((a) => a.mimeType)).toEqual(['message/delivery-status', 'text/rfc822-headers']);
    expect(dsn.perMessage.get('Reporting-MTA')).toBe('dns; mx.example.test');
    expect(dsn.perMessage.get('Original-Envelope-Id')).toBe('lunch-42');
    expect(dsn.perMessage.get('Arrival-Date')).toMatch(/^\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/);
    expect(dsn.groups).toHaveLength(1);
    expect(dsn.groups[0]!.get('Final-Recipient')).toBe('rfc822; bob@example.test');
    expect(dsn.groups[0]!.get('Original-Recipient')).toBe('rfc822; bob@example.test');
    expect(dsn.groups[0]!.get('Action')).toBe('delivered');
    expect(dsn.groups[0]!.get('Status')).toBe('2.0.0');
    // the original's headers (with our Received:), not its body
    expect(dsn.headers).toContain('Subject: lunch?');
    expect(dsn.headers).toContain('Message-ID: <lunch@example.test>');
    expect(dsn.headers).toMatch(/^Received: from client\.example\.test/);
    expect(dsn.raw).not.toContain('At noon.');
    // queued before the client's 250, so already logged
    expect(gw.logs.find((l) => l.msg === 'delivery report sent')).toMatchObject({ level: 'info', to: 'alice@example.test', recipients: ['bob@example.test'] });
  });

  it('the report is stored before the client gets its 250 (a crash after the 250 cannot lose it)', async () => {
    // storing the report is slow: a report sent after the 250 would not be there yet
    gw = await start({}, slowReportStore(300));
    const c = await SmtpTestClient.connect(gw.port);
    try {
      await c.read();
      await c.command('EHLO client.example.test');
      await c.command('MAIL FROM:<alice@example.test>');
      expect((await c.command('RCPT TO:<bob@example.test> NOTIFY=SUCCESS')).code).toBe(250);
      expect((await c.command('DATA')).code).toBe(354);
      c.write(dataBlock(ORIGINAL));
      expect((await c.read(20_000)).code).toBe(250);
      // no waiting: the session is still open and nothing else was sent
      const inbox = await gw.mailbox('alice');
      expect(inbox).toHaveLength(1);
      expect((await report(inbox[0]!)).groups[0]!.get('Action')).toBe('delivered');
      await c.command('QUIT');
    } finally {
      c.close();
    }
  });

  it('a report slower to store than queueTimeout: the client still gets 250 (never a 451 with the report out), one report', async () => {
    gw = await start({ queueTimeout: '1s' } as Omit<MaildirOptionsInput, 'root'>, slowReportStore(1_500));
    const r = await send('alice@example.test', ['<bob@example.test> NOTIFY=SUCCESS']);
    expect(r.data).toBe(250);
    expect(await gw.mailbox('bob')).toHaveLength(1);
    expect(gw.logs.some((l) => l.msg === 'delivery report still being stored; the client gets its 250 meanwhile')).toBe(true);
    await until(async () => (await gw!.mailbox('alice')).length === 1);
    await gw.gateway.close(); // waits for the report
    expect(await gw.mailbox('alice')).toHaveLength(1);
    expect(await gw.mailbox('bob')).toHaveLength(1);
  });

  it('a queue step after the Maildir fails: no report, and the retry gets one', async () => {
    let failures = 1;
    gw = await start({}, definePlugin({
      name: 'flaky-store',
      options: z.strictObject({}),
      setup({ tap }) {
        tap('queue', () => (failures-- > 0 ? tempfail('store unavailable') : undefined));
      },
    }));
    const first = await send('alice@example.test', ['<bob@example.test> NOTIFY=SUCCESS']);
    expect(first.data).toBe(451);
    expect(await gw.mailbox('bob')).toEqual([]);
    expect(await gw.mailbox('alice')).toEqual([]);
    const retry = await send('alice@example.test', ['<bob@example.test> NOTIFY=SUCCESS']);
    expect(retry.data).toBe(250);
    expect(await gw.mailbox('bob')).toHaveLength(1);
    expect(await gw.mailbox('alice')).toHaveLength(1);
    expect(gw.logs.filter((l) => l.msg === 'delivery report sent')).toHaveLength(1);
  });

  it('Python\'s email module reads the same report', async () => {
    gw = await start();
    await send('alice@example.test', ['<bob@example.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.test']);
    const [stored] = await arrived('alice');
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        String.raw`
import email, email.policy, sys, json
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
parts = list(m.iter_parts())
status = parts[1].get_payload()
print(json.dumps({'type': m.get_content_type(), 'report': m.get_param('report-type'), 'parts': [p.get_content_type() for p in parts],
  'per_message': dict(status[0].items()), 'recipient': dict(status[1].items())}))`,
      ],
      { input: stored!.bytes },
    );
    const parsed = JSON.parse(out.toString()) as { type: string; report: string; parts: string[]; per_message: Record<string, string>; recipient: Record<string, string> };
    expect(parsed.type).toBe('multipart/report');
    expect(parsed.report).toBe('delivery-status');
    expect(parsed.parts).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(parsed.per_message['Reporting-MTA']).toBe('dns; mx.example.test');
    expect(parsed.recipient).toMatchObject({ 'Final-Recipient': 'rfc822; bob@example.test', 'Original-Recipient': 'rfc822; bob@example.test', Action: 'delivered', Status: '2.0.0' });
  });

  it('nodemailer with dsn: { notify: [success, failure] }: reported', async () => {
    gw = await start();
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true, name: 'client.example.test' });
    try {
      await transport.sendMail({
        envelope: { from: 'alice@example.test', to: ['bob@example.test'] },
        raw: ORIGINAL,
        dsn: { id: 'nm-1', return: 'headers', notify: ['success', 'failure'], recipient: 'bob@example.test' },
      });
    } finally {
      transport.close();
    }
    await until(async () => (await gw!.mailbox('alice')).length === 1);
    const dsn = await report((await gw.mailbox('alice'))[0]!);
    expect(dsn.perMessage.get('Original-Envelope-Id')).toBe('nm-1');
    expect(dsn.groups.map((g) => [g.get('Final-Recipient'), g.get('Original-Recipient'), g.get('Action')])).toEqual([['rfc822; bob@example.test', 'rfc822; bob@example.test', 'delivered']]);
  });

  it('one report per transaction, about the recipients that asked; an alias is its RCPT address once', async () => {
    gw = await start({ aliases: { 'team@example.test': ['bob', 'carol'] } });
    const r = await send('alice@example.test', [
      '<team@example.test> NOTIFY=SUCCESS,FAILURE',
      '<dave@example.test> NOTIFY=FAILURE',
      '<erin@example.test> NOTIFY=SUCCESS ORCPT=utf-8;erin@example.test',
    ]);
    expect(r.data).toBe(250);
    for (const user of ['bob', 'carol', 'dave', 'erin']) expect(await gw.mailbox(user)).toHaveLength(1);
    const inbox = await arrived('alice');
    expect(inbox).toHaveLength(1);
    const dsn = await report(inbox[0]!);
    expect(dsn.groups.map((g) => g.get('Final-Recipient'))).toEqual(['rfc822; team@example.test', 'rfc822; erin@example.test']);
    expect(dsn.groups[0]!.has('Original-Recipient')).toBe(false);
    expect(dsn.groups[1]!.get('Original-Recipient')).toBe('utf-8; erin@example.test');
  });

  for (const [what, param] of [
    ['NOTIFY=NEVER', ' NOTIFY=NEVER'],
    ['NOTIFY=FAILURE', ' NOTIFY=FAILURE'],
    ['NOTIFY=FAILURE,DELAY', ' NOTIFY=FAILURE,DELAY'],
    ['no NOTIFY', ''],
    ['ORCPT without NOTIFY', ' ORCPT=rfc822;bob@example.test'],
  ] as const) {
    it(`${what}: no report`, async () => {
      gw = await start();
      const r = await send('alice@example.test', [`<bob@example.test>${param}`]);
      expect(r.data).toBe(250);
      expect(await gw.mailbox('bob')).toHaveLength(1);
      await gw.gateway.close(); // waits for reports still on their way
      expect(await gw.mailbox('alice')).toEqual([]);
      expect(gw.logs.filter((l) => String(l.msg).includes('delivery report'))).toEqual([]);
    });
  }

  it('from <>: no report (never about a report)', async () => {
    gw = await start();
    const r = await send('', ['<bob@example.test> NOTIFY=SUCCESS']);
    expect(r.data).toBe(250);
    expect(await gw.mailbox('bob')).toHaveLength(1);
    await gw.gateway.close(); // waits for reports still on their way
    expect(await gw.mailbox('postmaster')).toEqual([]);
    expect(gw.logs.filter((l) => String(l.msg).includes('delivery report'))).toEqual([]);
  });

  it('a remote sender with no plugin to relay the report: the refusal is logged, the message stays delivered', async () => {
    gw = await start();
    const r = await send('carol@remote.test', ['<bob@example.test> NOTIFY=SUCCESS']);
    expect(r.data).toBe(250);
    expect(await gw.mailbox('bob')).toHaveLength(1);
    await until(async () => gw!.logs.some((l) => l.msg === 'delivery report not taken'));
    const warning = gw.logs.find((l) => l.msg === 'delivery report not taken');
    expect(warning).toMatchObject({ level: 'warn', to: 'carol@remote.test', recipients: ['bob@example.test'] });
    expect((warning!.reply as { code: number }).code).toBeGreaterThanOrEqual(500);
  });

  it('a message refused at the end of data (over quota): no report', async () => {
    gw = await start({ quota: { bytes: 10 } } as Omit<MaildirOptionsInput, 'root'>);
    const c = await SmtpTestClient.connect(gw.port);
    try {
      await c.read();
      await c.command('EHLO client.example.test');
      await c.command('MAIL FROM:<alice@example.test>');
      const rcpt = await c.command('RCPT TO:<bob@example.test> NOTIFY=SUCCESS');
      if (rcpt.code === 250) {
        await c.command('DATA');
        c.write(dataBlock(ORIGINAL));
        expect((await c.read(20_000)).code).toBeGreaterThanOrEqual(400);
      }
      await c.command('QUIT');
    } finally {
      c.close();
    }
    await gw.gateway.close(); // waits for reports still on their way
    expect(await gw.mailbox('alice')).toEqual([]);
    expect(gw.logs.filter((l) => String(l.msg).includes('delivery report'))).toEqual([]);
  });
});

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('successNotices', () => {
  const address = (text: string) => ({ local: text.split('@')[0]!, domain: text.split('@')[1]!, address: text });
  const delivered = (text: string) => {
    const r = new Recipient(address(text) as never, new Map(), false, { notify: ['SUCCESS'] });
    (r.data as { maildir?: { targets: unknown[] } }).maildir = { targets: [{}] };
    return r;
  };
  it('none for mail a spam filter flagged: its sender is most likely forged (backscatter)', () => {
    const tx = new Transaction('t.1', address('alice@example.test') as never, new Map());
    const rcpt = delivered('bob@example.test');
    expect(successNotices(tx, [rcpt])).toEqual([rcpt]);
    tx.data.spam = { score: 9, flagged: true };
    expect(successNotices(tx, [rcpt])).toEqual([]);
  });
});


/** The messages in `user`'s Maildir once there is one (a report is delivered in the background). */
async function arrived(user: string): Promise<StoredMessage[]> {
  await until(async () => (await gw!.mailbox(user)).length > 0);
  return gw!.mailbox(user);
}
