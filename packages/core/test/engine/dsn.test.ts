/**
 * DSN (RFC 3461) in the engine, on bytes: advertised in EHLO unless `smtp.dsn: false`,
 * RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT checked (501 5.5.4 with a reason) and
 * decoded onto `tx.dsn` / `rcpt.dsn`, 555 when DSN is off or on the wrong command,
 * and nothing of them in the Received header or the stored message.
 */
import { describe, expect, it } from 'vitest';
import type { RecipientDsn, TransactionDsn } from '../../src/index.js';
import { EHLO_REPLY, OK_MAIL, OK_RCPT, QUEUED, lines, makeGateway, plugin, ready, splitReceived, storePlugin } from './helpers.js';

/** A store gateway whose queue tap also records the DSN parameters it saw. */
async function dsnGateway(config: Parameters<typeof makeGateway>[0] = {}) {
  const gw = makeGateway(config);
  const store = storePlugin('store', { domains: ['example.test'] });
  await gw.use(store.plugin);
  const seen: Array<{ tx: TransactionDsn | undefined; rcpts: Array<RecipientDsn | undefined> }> = [];
  await gw.use(plugin('dsn-spy', ({ tap }) => tap('queue', (_s, tx) => void seen.push({ tx: tx.dsn, rcpts: tx.recipients.map((r) => r.dsn) }))));
  return { gw, stored: store.stored, seen };
}

const BODY = lines('DATA', 'Subject: dsn', '', 'hello', '.');

describe('DSN: EHLO', () => {
  it('is advertised by default, after ENHANCEDSTATUSCODES', async () => {
    const gw = makeGateway();
    const s = await ready(gw);
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
    expect(EHLO_REPLY).toContain('250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n');
  });

  it('smtp.dsn: false hides it and its parameters get 555 5.5.4, as before DSN support', async () => {
    const gw = makeGateway({ smtp: { dsn: false } });
    const s = await ready(gw);
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY.replace('250-DSN\r\n', ''));
    expect(await s.send('MAIL FROM:<a@b.test> RET=HDRS\r\n')).toBe('555 5.5.4 Unsupported MAIL parameter RET\r\n');
    expect(await s.send('MAIL FROM:<a@b.test> ENVID=x\r\n')).toBe('555 5.5.4 Unsupported MAIL parameter ENVID\r\n');
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
    expect(await s.send('RCPT TO:<x@example.test> NOTIFY=NEVER\r\n')).toBe('555 5.5.4 Unsupported RCPT parameter NOTIFY\r\n');
    expect(await s.send('RCPT TO:<x@example.test> ORCPT=rfc822;x@example.test\r\n')).toBe('555 5.5.4 Unsupported RCPT parameter ORCPT\r\n');
  });
});

describe('DSN: parameters accepted and decoded', () => {
  it('RET, ENVID, NOTIFY and ORCPT reach the hooks decoded; recipients without them have none', async () => {
    const { gw, seen } = await dsnGateway();
    const s = await ready(gw);
    const out = await s.send(
      lines(
        'MAIL FROM:<a@b.test> RET=hdrs ENVID=QQ+2B314159',
        'RCPT TO:<x@example.test> NOTIFY=success,failure ORCPT=rfc822;Old+2BName@example.test',
        'RCPT TO:<y@example.test> NOTIFY=NEVER',
        'RCPT TO:<z@example.test>',
        'RCPT TO:<w@example.test> ORCPT=utf-8;\\x{E9}l\\x{E8}ve@example.test',
      ) + BODY,
    );
    expect(out.startsWith(OK_MAIL + OK_RCPT.repeat(4))).toBe(true);
    expect(out.slice((OK_MAIL + OK_RCPT.repeat(4)).length)).toMatch(/^354 [^\r]*\r\n250 2\.0\.0 OK: queued as \S+\r\n$/);
    expect(seen).toEqual([
      {
        tx: { ret: 'HDRS', envid: 'QQ+314159' },
        rcpts: [
          { notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'rfc822', address: 'Old+Name@example.test' } },
          { notify: ['NEVER'] },
          undefined,
          { orcpt: { type: 'utf-8', address: 'élève@example.test' } },
        ],
      },
    ]);
  });

  it('a transaction without DSN parameters has tx.dsn undefined', async () => {
    const { gw, seen } = await dsnGateway();
    const s = await ready(gw);
    await s.send(lines('MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME', 'RCPT TO:<x@example.test>') + BODY);
    expect(seen).toEqual([{ tx: undefined, rcpts: [undefined] }]);
  });

  it('a raw UTF-8 ORCPT (utf-8-addr-unitext) needs SMTPUTF8 on MAIL', async () => {
    const { gw, seen } = await dsnGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test> ORCPT=utf-8;é@example.test\r\nRSET\r\n')).toBe(
      OK_MAIL + '501 5.5.4 Non-ASCII parameter value requires SMTPUTF8\r\n250 2.0.0 OK\r\n',
    );
    await s.send(lines('MAIL FROM:<a@b.test> SMTPUTF8', 'RCPT TO:<x@example.test> ORCPT=utf-8;é@example.test') + BODY);
    expect(seen[0]!.rcpts).toEqual([{ orcpt: { type: 'utf-8', address: 'é@example.test' } }]);
  });

  it('the Received header and the stored message carry none of them', async () => {
    const { gw, stored } = await dsnGateway();
    const s = await ready(gw);
    await s.send(lines('MAIL FROM:<a@b.test> RET=FULL ENVID=SECRET-ENVID', 'RCPT TO:<x@example.test> NOTIFY=SUCCESS ORCPT=rfc822;secret-orcpt@example.test') + BODY);
    expect(stored).toHaveLength(1);
    const bytes = stored[0]!.bytes.toString('latin1');
    const { received, rest } = splitReceived(stored[0]!.bytes);
    expect(received).toMatch(/\r\n\tfor <x@example\.test>;/);
    for (const leak of ['SECRET', 'secret-orcpt', 'ENVID', 'ORCPT', 'NOTIFY', 'RET=']) expect(bytes).not.toContain(leak);
    expect(rest.toString()).toBe('Subject: dsn\r\n\r\nhello\r\n');
  });
});

describe('DSN: refused parameters (501 5.5.4 with a reason, the transaction goes on)', () => {
  it.each([
    ['MAIL FROM:<a@b.test> RET=HEADERS', '501 5.5.4 Bad RET parameter: use RET=FULL or RET=HDRS'],
    ['MAIL FROM:<a@b.test> RET', '501 5.5.4 Bad RET parameter: use RET=FULL or RET=HDRS'],
    ['MAIL FROM:<a@b.test> ENVID=' + 'x'.repeat(101), '501 5.5.4 Bad ENVID parameter: xtext of at most 100 printable ASCII characters'],
    ['MAIL FROM:<a@b.test> ENVID=a+0D+0AX-Injected:+20yes', '501 5.5.4 Bad ENVID parameter: xtext of at most 100 printable ASCII characters'],
    ['MAIL FROM:<a@b.test> ENVID=a+4', '501 5.5.4 Bad ENVID parameter: xtext of at most 100 printable ASCII characters'],
    ['MAIL FROM:<a@b.test> RET=HDRS RET=HDRS', '501 5.5.4 Duplicate parameter RET'],
    ['MAIL FROM:<a@b.test> ENVID=1 ENVID=2', '501 5.5.4 Duplicate parameter ENVID'],
    ['MAIL FROM:<a@b.test> NOTIFY=NEVER', '555 5.5.4 Unsupported MAIL parameter NOTIFY'],
    ['MAIL FROM:<a@b.test> ORCPT=rfc822;a@b.test', '555 5.5.4 Unsupported MAIL parameter ORCPT'],
  ])('%s → %s', async (command, reply) => {
    const gw = makeGateway();
    const s = await ready(gw);
    expect(await s.send(`${command}\r\n`)).toBe(`${reply}\r\n`);
    expect(s.session.transaction).toBeUndefined();
    expect(await s.send('MAIL FROM:<a@b.test> RET=FULL\r\n')).toBe(OK_MAIL);
  });

  const NOTIFY_TEXT = '501 5.5.4 Bad NOTIFY parameter: use NEVER, or a comma list of SUCCESS, FAILURE and DELAY';
  const ORCPT_TEXT = '501 5.5.4 Bad ORCPT parameter: use ORCPT=rfc822;address (xtext) or ORCPT=utf-8;address';
  it.each([
    ['NOTIFY=NEVER,FAILURE', NOTIFY_TEXT],
    ['NOTIFY=SUCCESS,', NOTIFY_TEXT],
    ['NOTIFY=SOMETIMES', NOTIFY_TEXT],
    ['NOTIFY', NOTIFY_TEXT],
    ['NOTIFY=NEVER NOTIFY=NEVER', '501 5.5.4 Duplicate parameter NOTIFY'],
    ['ORCPT=x@example.test', ORCPT_TEXT],
    ['ORCPT=rfc822;', ORCPT_TEXT],
    ['ORCPT=rfc822;a+0D+0Ab', ORCPT_TEXT],
    ['ORCPT=rfc822;+C3+A9@example.test', ORCPT_TEXT],
    ['ORCPT=utf-8;\\x{0}@example.test', ORCPT_TEXT],
    ['ORCPT=rfc822;a ORCPT=rfc822;b', '501 5.5.4 Duplicate parameter ORCPT'],
    ['ORCPT=rfc822;' + 'a'.repeat(494), '501 5.5.4 Bad ORCPT parameter: longer than 500 characters'],
    ['ENVID=x', '555 5.5.4 Unsupported RCPT parameter ENVID'],
    ['NOTIFY=NEVER FOO=1', '555 5.5.4 Unsupported RCPT parameter FOO'],
  ])('RCPT … %s → %s', async (params, reply) => {
    const gw = makeGateway({ limits: { maxCommandLineLength: 1000 } });
    const { plugin: store } = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store);
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\n');
    expect(await s.send(`RCPT TO:<x@example.test> ${params}\r\n`)).toBe(`${reply}\r\n`);
    expect(s.session.transaction!.recipients).toHaveLength(0);
    expect(await s.send('RCPT TO:<x@example.test> NOTIFY=DELAY\r\n')).toBe(OK_RCPT);
  });

  it('an ORCPT of exactly 500 characters is taken', async () => {
    const gw = makeGateway({ limits: { maxCommandLineLength: 1000 } });
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\n');
    expect(await s.send(`RCPT TO:<x@example.test> ORCPT=rfc822;${'a'.repeat(493)}\r\n`)).toBe(OK_RCPT);
  });

  it('the checks come before the hooks: a refused parameter never reaches a rcpt tap', async () => {
    const gw = makeGateway();
    const calls: string[] = [];
    await gw.use(plugin('spy', ({ tap }) => tap('rcpt', (_s, _tx, r) => void calls.push(r.text))));
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test> NOTIFY=BAD\r\nRCPT TO:<y@example.test> NOTIFY=FAILURE\r\n');
    expect(calls).toEqual(['y@example.test']);
  });

  it('in one pipelined write, a refused NOTIFY costs only that recipient', async () => {
    const { gw, stored } = await dsnGateway();
    const s = await ready(gw);
    const out = await s.send(lines('MAIL FROM:<a@b.test> RET=HDRS ENVID=id1', 'RCPT TO:<x@example.test> NOTIFY=NEVER,SUCCESS', 'RCPT TO:<y@example.test> NOTIFY=FAILURE') + BODY);
    const replies = out.split('\r\n').filter(Boolean);
    expect(replies.slice(0, 3)).toEqual([OK_MAIL.trim(), NOTIFY_TEXT, OK_RCPT.trim()]);
    expect(replies[3]).toMatch(/^354 /);
    expect(`${replies[4]}\r\n`).toMatch(QUEUED);
    expect(stored[0]!.rcpts).toEqual(['y@example.test']);
  });
});
