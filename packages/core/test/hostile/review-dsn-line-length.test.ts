/**
 * RFC 3461 §4 (list item 5 of the MAIL/RCPT parameter rules): with DSN advertised, a
 * MAIL command line may be 100 characters longer (ENVID, RET) and a RCPT command line
 * 500 characters longer (NOTIFY, ORCPT) than RFC 5321's 512. A DSN client that forwards
 * a long address with its ORCPT (Postfix, Exim, Sendmail all do) must not get
 * "500 Line too long", a permanent failure of that recipient. Other commands keep the
 * plain limit, and without DSN nothing changes.
 */
import { describe, expect, it } from 'vitest';
import { OK_MAIL, OK_RCPT, makeGateway, ready, storePlugin } from '../engine/helpers.js';

const LOCAL = 'l'.repeat(64);
const DOMAIN = `${'d'.repeat(60)}.`.repeat(2) + `${'d'.repeat(51)}.example.test`; // a 251-character path with LOCAL
const LONG_RCPT = `${LOCAL}@${'d'.repeat(60)}.example.test`;
/** 413 characters of xtext, 213 decoded: within RFC 3461's 500. */
const ORCPT = `rfc822;${'o'.repeat(100)}${'+2B'.repeat(100)}@example.test`;

async function session(config: Parameters<typeof makeGateway>[0] = {}) {
  const gw = makeGateway(config);
  await gw.use(storePlugin('store', { domains: [`${'d'.repeat(60)}.example.test`] }).plugin);
  return ready(gw);
}

describe('DSN parameters lengthen MAIL and RCPT command lines (RFC 3461 §4)', () => {
  it('a RCPT line of about 900 characters with NOTIFY and a long ORCPT is accepted', async () => {
    const s = await session();
    expect(await s.send('EHLO c.test\r\n')).toMatch(/250-DSN/);
    const mail = `MAIL FROM:<${LOCAL}@${DOMAIN}> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=${'e'.repeat(10)}${'+2B'.repeat(90)}\r\n`;
    expect(mail.length).toBeGreaterThan(512);
    expect(mail.length).toBeLessThanOrEqual(612);
    expect(await s.send(mail)).toBe(OK_MAIL);
    const rcpt = `RCPT TO:<${LONG_RCPT}> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=${ORCPT}\r\n`;
    expect(rcpt.length).toBeGreaterThan(512);
    expect(rcpt.length).toBeLessThanOrEqual(1012);
    expect(await s.send(rcpt)).toBe(OK_RCPT);
  });

  it('other commands, and lines over the lengthened limits, still get 500 5.5.6', async () => {
    const s = await session();
    await s.send('EHLO c.test\r\n');
    expect(await s.send(`NOOP ${'x'.repeat(600)}\r\n`)).toBe('500 5.5.6 Line too long\r\n');
    expect(await s.send(`MAIL FROM:<a@b.test> ENVID=${'e'.repeat(700)}\r\n`)).toBe('500 5.5.6 Line too long\r\n');
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
    expect(await s.send(`RCPT TO:<x@b.test> ORCPT=rfc822;${'o'.repeat(1100)}\r\n`)).toBe('500 5.5.6 Line too long\r\n');
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it('without DSN the limit stays 512 for MAIL and RCPT too', async () => {
    const s = await session({ smtp: { dsn: false } });
    await s.send('EHLO c.test\r\n');
    expect(await s.send(`MAIL FROM:<${LOCAL}@${DOMAIN}> BODY=8BITMIME${' '.repeat(300)}\r\n`)).toBe('500 5.5.6 Line too long\r\n');
  });
});
