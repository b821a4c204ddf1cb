/**
 * Limits: command line length (512 by default, RFC 5321 §4.5.3.1.4), error count,
 * recipients per message, the idle timeout and graceful shutdown.
 */
import { describe, expect, it, vi } from 'vitest';
import { readdirSync } from 'node:fs';
import { GO_AHEAD, OK_MAIL, OK_RCPT, envelope, lines, makeGateway, plugin, ready, sleep, storeGateway, storePlugin } from './helpers.js';
import { accept } from '../../src/verdict.js';

const TOO_LONG = '500 5.5.6 Line too long\r\n';
const NOOP_OK = '250 2.0.0 OK\r\n';

describe('command line length', () => {
  it('512 octets with CRLF are accepted, 513 are not', async () => {
    const s = await ready(makeGateway());
    const line510 = `NOOP ${'x'.repeat(505)}`;
    expect(Buffer.byteLength(line510)).toBe(510);
    expect(await s.send(`${line510}\r\n`)).toBe(NOOP_OK);
    expect(await s.send(`${line510}x\r\n`)).toBe(TOO_LONG);
    expect(await s.send('NOOP\r\n')).toBe(NOOP_OK);
  });

  it('a 10 KB line in one write: one 500 5.5.6, nothing of it is executed, the next line is', async () => {
    const s = await ready(makeGateway());
    const long = `NOOP ${'a'.repeat(5000)}\rQUIT\r${'b'.repeat(5000)}`;
    expect(await s.send(`${long}\r\nNOOP\r\n`)).toBe(TOO_LONG + NOOP_OK);
    expect(s.closed).toBe(false);
  });

  it('a 10 KB line split across many feeds: one 500 5.5.6, its tail is not read as commands', async () => {
    const s = await ready(makeGateway());
    const long = Buffer.from(`MAIL FROM:<${'a'.repeat(4000)}@b.test> QUIT RSET ${'c'.repeat(6000)}\r\nNOOP\r\n`);
    let out = '';
    for (let i = 0; i < long.length; i += 97) out += await s.send(long.subarray(i, i + 97));
    expect(out).toBe(TOO_LONG + NOOP_OK);
    expect(s.session.transaction).toBeUndefined();
    expect(s.closed).toBe(false);
  });

  it('a long line whose end arrives with the next command in one chunk', async () => {
    const s = await ready(makeGateway());
    expect(await s.send('X'.repeat(600))).toBe(TOO_LONG);
    expect(await s.send('X'.repeat(600))).toBe('');
    expect(await s.send('tail\r\nNOOP\r\n')).toBe(NOOP_OK);
  });

  it('a line just below the limit that is completed in a later feed is fine', async () => {
    const s = await ready(makeGateway());
    expect(await s.send(`NOOP ${'x'.repeat(505)}`)).toBe('');
    expect(await s.send('\r')).toBe('');
    expect(await s.send('\n')).toBe(NOOP_OK);
  });

  it('maxCommandLineLength can be raised', async () => {
    const s = await ready(makeGateway({ limits: { maxCommandLineLength: 1000 } }));
    expect(await s.send(`NOOP ${'x'.repeat(993)}\r\n`)).toBe(NOOP_OK);
    expect(await s.send(`NOOP ${'x'.repeat(994)}\r\n`)).toBe(TOO_LONG);
  });

  it('an overlong SASL response (over 12,288 octets) is refused and ends the AUTH exchange: the next line is a command', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    await gw.use(plugin('auth', ({ tap }) => tap('auth', () => undefined)));
    const s = await ready(gw);
    // (it was taken as the response to the exchange still open: a MAIL eaten as credentials)
    expect(await s.send(`AUTH PLAIN\r\n${'A'.repeat(13_000)}\r\nNOOP\r\n`)).toBe('334 \r\n' + TOO_LONG + '250 2.0.0 OK\r\n');
    expect(await s.send(`AUTH LOGIN\r\n${'A'.repeat(13_000)}\r\nNOOP\r\n`)).toBe('334 VXNlcm5hbWU6\r\n' + TOO_LONG + '250 2.0.0 OK\r\n');
  });

  it('a SASL response longer than a command line is taken (RFC 4954: long passwords and tokens)', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    const password = 'p'.repeat(2_000);
    await gw.use(plugin('auth', ({ tap }) => tap('auth', (_s, c) => (c.username === 'alice' && c.password === password ? accept() : undefined))));
    const s = await ready(gw);
    const response = Buffer.from(`\0alice\0${password}`).toString('base64');
    expect(response.length).toBeGreaterThan(512);
    expect(await s.send(`AUTH PLAIN\r\n${response}\r\n`)).toBe('334 \r\n235 2.7.0 Authentication successful\r\n');
  });

  it('a SASL response of exactly 12,288 octets (CRLF not counted) is taken; 12,289 is not', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    await gw.use(plugin('auth', ({ tap }) => tap('auth', () => undefined)));
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN\r\n${'A'.repeat(12_288)}\r\n`)).toBe('334 \r\n501 5.5.2 Invalid AUTH PLAIN response\r\n');
    expect(await s.send(`AUTH PLAIN\r\n${'A'.repeat(12_289)}\r\nNOOP\r\n`)).toBe('334 \r\n' + TOO_LONG + NOOP_OK);
  });
});

describe('junk commands (NOOP, RSET, VRFY, HELP)', () => {
  it('past maxJunkCommands each one counts as an error: a client cannot hold its slot with NOOPs for ever', async () => {
    const s = await ready(makeGateway({ limits: { maxJunkCommands: 3, maxErrors: 2 } }));
    expect(await s.send(lines('NOOP', 'RSET', 'HELP'))).toBe('250 2.0.0 OK\r\n250 2.0.0 OK\r\n214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n214 2.0.0 See RFC 5321\r\n');
    expect(s.closed).toBe(false);
    // the 4th and 5th: answered, and each an error; the 2nd error closes
    expect(await s.send(lines('NOOP', 'NOOP'))).toBe('250 2.0.0 OK\r\n250 2.0.0 OK\r\n421 4.7.0 Too many errors, closing connection\r\n');
    expect(s.closed).toBe(true);
  });

  it('a pooled connection that sends RSET before each message is never cut off: a delivered message starts the count again', async () => {
    const { gw } = await storeGateway({ limits: { maxJunkCommands: 3, maxErrors: 2 } });
    const s = await ready(gw);
    for (let i = 0; i < 20; i++) {
      expect(await s.send(lines('RSET', 'NOOP', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA'))).toBe(NOOP_OK + NOOP_OK + OK_MAIL + OK_RCPT + GO_AHEAD);
      expect(await s.send('hi\r\n.\r\n')).toMatch(/^250 /);
    }
    expect(s.closed).toBe(false);
  });

  it('mail moving does not count: 150 messages on one connection are fine', async () => {
    const { gw } = await storeGateway({ limits: { maxJunkCommands: 100 } });
    const s = await ready(gw);
    for (let i = 0; i < 150; i++) {
      expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA'))).toBe(OK_MAIL + OK_RCPT + GO_AHEAD);
      expect(await s.send('hi\r\n.\r\n')).toMatch(/^250 /);
    }
    expect(s.closed).toBe(false);
  });
});

describe('error limit', () => {
  it('421 and close after maxErrors error replies', async () => {
    const s = await ready(makeGateway({ limits: { maxErrors: 3 } }));
    const out = await s.send(lines('MAIL FROM:bad', 'RCPT TO:<a@b.test>', 'DATA', 'NOOP'));
    expect(out).toBe(
      '501 5.1.7 Bad sender address syntax\r\n' +
        '503 5.5.1 Need MAIL before RCPT\r\n' +
        '503 5.5.1 Need MAIL command\r\n' +
        '421 4.7.0 Too many errors, closing connection\r\n',
    );
    expect(s.closed).toBe(true);
  });

  it('refused recipients, overlong lines and a refused message all count', async () => {
    const { gw } = await storeGateway({ limits: { maxErrors: 3, maxMessageSize: 100 } });
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@far.test>', 'RCPT TO:<x@example.test>', 'DATA'))).toBe(
      OK_MAIL + '554 5.7.1 <x@far.test>: Relay access denied\r\n' + OK_RCPT + GO_AHEAD,
    );
    expect(await s.send(`${'x'.repeat(200)}\r\n.\r\n`)).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(await s.send(`${'y'.repeat(600)}\r\n`)).toBe(TOO_LONG + '421 4.7.0 Too many errors, closing connection\r\n');
    expect(s.closed).toBe(true);
  });

  it('the limit is not checked in the middle of a message body', async () => {
    // A message refused at the end still gets its one reply before the 421.
    const { gw } = await storeGateway({ limits: { maxErrors: 1 } });
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'x@example.test') + 'bare\nlf\r\n.\r\nNOOP\r\n')).toMatch(
      /^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n550 5\.6\.11 [^\r]*\r\n421 4\.7\.0 Too many errors, closing connection\r\n$/,
    );
  });
});

describe('recipients per message', () => {
  it('452 4.5.3 past maxRecipients; the message goes to the accepted ones', async () => {
    const { gw, stored } = await storeGateway({ limits: { maxRecipients: 2 } });
    const s = await ready(gw);
    expect(await s.send(envelope('a@b.test', 'r1@example.test', 'r2@example.test', 'r3@example.test') + 'hi\r\n.\r\n')).toMatch(
      new RegExp(`^${OK_MAIL}${OK_RCPT}${OK_RCPT}452 4\\.5\\.3 Too many recipients\\r\\n${GO_AHEAD}250 2\\.0\\.0 OK: queued`),
    );
    expect(stored[0]!.rcpts).toEqual(['r1@example.test', 'r2@example.test']);
  });

  it('refused recipients do not use up the limit', async () => {
    const { gw } = await storeGateway({ limits: { maxRecipients: 1 } });
    const s = await ready(gw);
    expect(await s.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@far.test>', 'RCPT TO:<x@example.test>'))).toBe(
      OK_MAIL + '554 5.7.1 <x@far.test>: Relay access denied\r\n' + OK_RCPT,
    );
  });
});

describe('idle timeout and shutdown', () => {
  it('timeout(): 421 4.4.2 and close', async () => {
    const s = await ready(makeGateway());
    s.session.timeout();
    expect(s.take()).toBe('421 4.4.2 mx.test Error: timeout exceeded\r\n');
    expect(s.closed).toBe(true);
    s.session.timeout();
    expect(s.take()).toBe('');
  });

  it('a timeout in the middle of DATA drops the message and its spool file', async () => {
    const gw = makeGateway({ spool: { memoryThreshold: 1024 } });
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    await s.send('x'.repeat(10_000));
    // The spool file is opened asynchronously.
    for (let i = 0; i < 100 && readdirSync(gw.spool.options.dir).length === 0; i++) await sleep(5);
    expect(readdirSync(gw.spool.options.dir)).toHaveLength(1);
    s.session.timeout();
    expect(s.take()).toBe('421 4.4.2 mx.test Error: timeout exceeded\r\n');
    await s.end();
    expect(store.stored).toHaveLength(0);
    expect(readdirSync(gw.spool.options.dir)).toHaveLength(0);
  });

  it('a body that trickles in past limits.dataTimeout is cut off with 421 4.4.2', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const gw = makeGateway({ limits: { dataTimeout: '2s' } });
      const store = storePlugin('store', { domains: ['example.test'] });
      await gw.use(store.plugin);
      const s = await ready(gw);
      await s.send(envelope('a@b.test', 'x@example.test'));
      expect(await s.send('Subject: slow\r\n')).toBe('');
      vi.setSystemTime(Date.now() + 1_000);
      expect(await s.send('still within the limit\r\n')).toBe('');
      vi.setSystemTime(Date.now() + 1_500);
      expect(await s.send('too late\r\n.\r\n')).toBe('421 4.4.2 mx.test Error: timeout exceeded while receiving data\r\n');
      expect(s.closed).toBe(true);
      await s.end();
      expect(store.stored).toHaveLength(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('shutdown(): an idle session is closed with 421 4.3.2', async () => {
    const s = await ready(makeGateway());
    s.session.shutdown();
    expect(s.take()).toBe('421 4.3.2 mx.test Service shutting down, try again later\r\n');
    expect(s.closed).toBe(true);
  });

  it('shutdown(): a session in a transaction may finish its message first', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    s.session.shutdown();
    expect(s.take()).toBe('');
    expect(await s.send('hi\r\n.\r\nMAIL FROM:<a@b.test>\r\n')).toMatch(
      /^250 2\.0\.0 OK: queued as \S+\r\n421 4\.3\.2 mx\.test Service shutting down, try again later\r\n$/,
    );
    expect(stored).toHaveLength(1);
    expect(s.closed).toBe(true);
  });

  it('shutdown(): a QUIT pipelined after the message still gets its 221', async () => {
    const { gw, stored } = await storeGateway();
    const s = await ready(gw);
    await s.send(envelope('a@b.test', 'x@example.test'));
    s.session.shutdown();
    expect(await s.send('hi\r\n.\r\nQUIT\r\n')).toMatch(/^250 2\.0\.0 OK: queued as \S+\r\n221 2\.0\.0 mx\.test closing connection\r\n$/);
    expect(stored).toHaveLength(1);
    expect(s.closed).toBe(true);
  });
});
