/**
 * DSN parameters (RFC 3461) from real clients, through a real gateway on loopback:
 * nodemailer's `dsn` option (one NOTIFY/ORCPT for every recipient) and Python's
 * smtplib with per-recipient `rcpt_options`. What the hooks see is the decoded value
 * of what the client put on the wire. (The installed swaks, 20201014, has no DSN
 * options; smtplib is the second client.)
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { accept, definePlugin, type RecipientDsn, type TransactionDsn } from '@mailgate/core';
import { startTestGateway, type TestGateway } from '@mailgate/core/testing';
import { HERE, PYTHON, haveTool, run } from './helpers.js';

interface Seen {
  from: string;
  dsn: TransactionDsn | undefined;
  rcpts: Array<[string, RecipientDsn | undefined]>;
  message: string;
}

let gw: TestGateway;
const seen: Seen[] = [];

beforeAll(async () => {
  gw = await startTestGateway({}, async (g) => {
    await g.use(
      definePlugin({
        name: 'dsn-capture',
        setup({ tap, gateway }) {
          gateway.addLocalDomain('example.test');
          tap('claim', () => accept());
          tap('queue', async (_s, tx) => {
            seen.push({
              from: tx.senderText,
              dsn: tx.dsn,
              rcpts: tx.recipients.map((r) => [r.text, r.dsn]),
              message: (await tx.message!.toBuffer()).toString('utf8'),
            });
            return accept();
          });
        },
      }),
    );
  });
});
afterAll(async () => {
  await gw?.close();
});

const RAW = 'From: a@sender.test\r\nTo: b@example.test\r\nSubject: dsn\r\n\r\nhello\r\n';

describe('nodemailer → gateway, with dsn', () => {
  it('RET, ENVID, NOTIFY and ORCPT arrive decoded; nothing of them in the stored message', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true, connectionTimeout: 5_000 });
    const before = seen.length;
    const info = await transport.sendMail({
      envelope: { from: 'alice@sender.test', to: ['bob@example.test', 'carol@example.test'] },
      raw: RAW,
      dsn: { id: 'nm+id=1 x', return: 'headers', notify: ['failure', 'delay'], recipient: 'orig+tag@sender.test' },
    });
    expect(info.accepted).toEqual(['bob@example.test', 'carol@example.test']);
    const m = seen[before]!;
    expect(m.dsn).toEqual({ ret: 'HDRS', envid: 'nm+id=1 x' });
    // nodemailer has one NOTIFY and one ORCPT for the whole envelope.
    const each = { notify: ['FAILURE', 'DELAY'], orcpt: { type: 'rfc822', address: 'orig+tag@sender.test' } };
    expect(m.rcpts).toEqual([
      ['bob@example.test', each],
      ['carol@example.test', each],
    ]);
    expect(m.message).not.toMatch(/nm\+id|orig\+tag|NOTIFY|ENVID/);
    transport.close();
  });

  it('NOTIFY=NEVER and RET=FULL', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true });
    const before = seen.length;
    await transport.sendMail({ envelope: { from: 'alice@sender.test', to: ['bob@example.test'] }, raw: RAW, dsn: { ret: 'FULL', notify: 'NEVER' } });
    expect(seen[before]!.dsn).toEqual({ ret: 'FULL' });
    expect(seen[before]!.rcpts).toEqual([['bob@example.test', { notify: ['NEVER'] }]]);
    transport.close();
  });
});

const SCRIPT = join(HERE, 'smtplib_client.py');

describe.skipIf(!haveTool(PYTHON))('Python smtplib → gateway, with mail_options and rcpt_options', () => {
  async function smtplib(request: Record<string, unknown>): Promise<{ exit: number | null; out: Record<string, unknown> }> {
    const r = await run(PYTHON, [SCRIPT, JSON.stringify({ host: '127.0.0.1', port: gw.port, ...request })], { timeoutMs: 20_000 });
    return { exit: r.code, out: JSON.parse(r.stdout) as Record<string, unknown> };
  }

  it('advertises DSN, and per-recipient parameters arrive decoded (utf-8 ORCPT included)', async () => {
    const before = seen.length;
    const r = await smtplib({
      from: 'alice@sender.test',
      to: ['bob@example.test'],
      raw_b64: Buffer.from(RAW).toString('base64'),
      mail_options: ['RET=FULL', 'ENVID=py+2Bid'],
      rcpt_options: ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=utf-8;b\\x{F6}b@sender.test'],
    });
    expect(r.exit).toBe(0);
    expect(r.out.features).toContain('dsn');
    expect(seen[before]!.dsn).toEqual({ ret: 'FULL', envid: 'py+id' });
    expect(seen[before]!.rcpts).toEqual([['bob@example.test', { notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'utf-8', address: 'böb@sender.test' } }]]);
  });

  it('a bad NOTIFY is refused with 501 5.5.4 and the reason', async () => {
    const before = seen.length;
    const r = await smtplib({ from: 'alice@sender.test', to: ['bob@example.test'], raw_b64: Buffer.from(RAW).toString('base64'), rcpt_options: ['NOTIFY=NEVER,SUCCESS'] });
    expect(r.exit).toBe(4);
    expect(r.out.recipients).toEqual({ 'bob@example.test': [501, '5.5.4 Bad NOTIFY parameter: use NEVER, or a comma list of SUCCESS, FAILURE and DELAY'] });
    expect(seen.length).toBe(before);
  });
});
