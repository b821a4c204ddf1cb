/**
 * Content injection: what a client writes ending up somewhere it must not — reply
 * lines, the Received: trace header, log lines (JSON and pretty), AUTH exchanges —
 * plus NUL bytes and invalid / overlong UTF-8 everywhere.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { accept, createGateway, createLogger, silentLogger, type Gateway, type Logger } from '@mailgate/core';
import { startTestGateway, testSession } from '@mailgate/core/testing';
import { capture, cleanupTemps, plugin, RawClient, receivedHeader, replyCodes, tempDir } from './helpers.js';

afterAll(() => cleanupTemps());

/** Logs every AUTH user name as an auth plugin would (client text in a log line). */
const authLogger = plugin('auth-logger', ({ tap, log }) =>
  tap('auth', (_s, creds) => {
    log.info('authentication failed', { user: creds.username });
    return undefined;
  }),
);

function gateway(logger: Logger = silentLogger, config: Parameters<typeof createGateway>[0] = {}): Gateway {
  return createGateway({ hostname: 'mx.test', spool: { dir: `${tempDir()}/spool` }, ...(config as object) }, { logger });
}

/** Deliver one message after `EHLO <helo bytes>`; returns the stored message and what the session answered. */
async function deliverWithHelo(helo: Buffer | string, logger: Logger = silentLogger, rcpt = 'b@y.test') {
  const gw = gateway(logger);
  const cap = capture();
  await gw.use(cap.plugin);
  const s = await testSession(gw);
  const ehlo = await s.send(Buffer.concat([Buffer.from('EHLO '), Buffer.isBuffer(helo) ? helo : Buffer.from(helo, 'utf8'), Buffer.from('\r\n')]));
  const rest = await s.send(`MAIL FROM:<a@x.test>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n`);
  return { ehlo, rest, stored: cap.stored };
}

describe('HELO name → Received: header', () => {
  it('CR or LF inside the HELO argument cannot start a header line: the command is refused or split, never folded into Received', async () => {
    for (const helo of ['evil\rX-Injected: yes', 'evil\x0bX-Injected: yes', 'evil\x0cX-Injected: yes']) {
      const gw = gateway();
      const s = await testSession(gw);
      expect(await s.send(`EHLO ${helo}\r\n`)).toMatch(/^501 5\.5\.4 /);
    }
    // A bare LF ends the command line: what follows is a separate command, and a header
    // line sent as a command ("X-Injected:") marks a non-SMTP client: 421 and close.
    const { ehlo, rest, stored } = await deliverWithHelo('evil\nX-Injected: yes');
    expect(ehlo).toMatch(/^250-mx\.test Hello evil [^\r]*\r\n(250-[^\r]*\r\n)*250 [^\r]*\r\n421 4\.7\.0 Not an SMTP client/);
    expect(rest).toBe('');
    expect(stored).toHaveLength(0);
  });

  it('structural characters ( ) ; < > \\ and a 1000-character name cannot break the from-clause', async () => {
    const { stored } = await deliverWithHelo('a(b)c;by=evil.example<x>\\y');
    const received = receivedHeader(stored[0]!.bytes);
    expect(received).toMatch(/^Received: from [^\s();<>\\]+ \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Mailgate\) with ESMTP id /);
    const long = await deliverWithHelo('h'.repeat(255)); // the longest name accepted (RFC 1035 domain length)
    expect(receivedHeader(long.stored[0]!.bytes).split('\r\n')[0]!.length).toBeLessThan(300);
    const tooLong = await deliverWithHelo('h'.repeat(490));
    expect(tooLong.ehlo).toMatch(/^501 5\.5\.2 Invalid EHLO name/);
  });

  it('the recipient in the for-clause is sanitised too (quoted local part with structural characters)', async () => {
    const { stored } = await deliverWithHelo('client.test', silentLogger, '"x;y(z)<w>"@y.test');
    const received = receivedHeader(stored[0]!.bytes);
    expect(received).toMatch(/\tfor <[^;()<>\\\s]+>;\r\n/);
  });

  // Fixed: NUL, ESC, BEL, DEL, C1 controls and bidi overrides were accepted, echoed in the 250 reply and handed to plugins.
  it('EHLO with control characters or bidi overrides is refused with 501', async () => {
    for (const helo of ['a\x00b', 'a\x1b[2Jb', 'a\x07b', 'a\x7fb', 'a\u0085b', 'mx\u202eelgoog.example', 'a\u200bb']) {
      const gw = gateway();
      const s = await testSession(gw);
      expect(await s.send(Buffer.from(`EHLO ${helo}\r\n`, 'utf8'))).toMatch(/^501 /);
    }
  });

  // Fixed: raw UTF-8 reached the Received: header of a plain (non-SMTPUTF8) message, where header fields must be US-ASCII (RFC 5322).
  it('the Received: header of a non-SMTPUTF8 message is printable US-ASCII whatever the HELO name', async () => {
    const { stored } = await deliverWithHelo('mx-ünïcödé.exämple');
    const received = receivedHeader(stored[0]!.bytes);
    expect(received).toMatch(/^[\x20-\x7e\r\n\t]*$/);
  });
});

describe('log lines', () => {
  it('JSON logs: quotes, backslashes and newlines from the client stay inside one valid JSON line per event', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', level: 'info', write: (l) => void lines.push(l) });
    await deliverWithHelo('x"}\\{"level":"error","msg":"forged"', logger);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(lines[0]!.slice(0, -1)).not.toContain('\n');
    const event = JSON.parse(lines[0]!) as { msg: string; level: string; helo: string };
    expect(event.msg).toBe('transaction');
    expect(event.level).toBe('info');
    expect(event.helo).toBe('x"}\\{"level":"error","msg":"forged"');
  });

  it('JSON logs: an AUTH user name with CR/LF (logged by auth plugins) stays on one line', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', level: 'info', write: (l) => void lines.push(l) });
    const gw = gateway(logger, { smtp: { authWithoutTls: true } });
    await gw.use(authLogger);
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const user = 'bob\r\n{"level":"info","msg":"authentication succeeded","user":"admin"}';
    expect(await s.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0pw`).toString('base64')}\r\n`)).toMatch(/^535 /);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.slice(0, -1)).not.toMatch(/[\r\n]/);
  });

  // Fixed: the pretty format wrote client text raw: ESC/BEL/NEL reached the admin's terminal (CWE-150).
  it('pretty logs contain no raw control characters from the client', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'pretty', level: 'info', write: (l) => void lines.push(l) });
    const gw = gateway(logger, { smtp: { authWithoutTls: true } });
    await gw.use(authLogger);
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const user = 'a\x1b]0;owned\x07\x1b[2J\x1b[31mb\u0085c';
    await s.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0pw`).toString('base64')}\r\n`);
    expect(lines).toHaveLength(1);
    // eslint-disable-next-line no-control-regex
    expect(lines[0]!.slice(0, -1)).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });
});

describe('NUL bytes and invalid UTF-8', () => {
  it('NUL in verbs, addresses and parameters is refused (5xx), never a crash, and the session goes on', async () => {
    const gw = gateway();
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const cases: Array<[string, RegExp]> = [
      ['NO\x00OP', /^500 5\.5\.2 /],
      ['\x00\x00\x00', /^500 5\.5\.2 /],
      ['MAIL FROM:<a\x00b@x.test>', /^501 5\.1\.7 /],
      ['MAIL FROM:<a@x.test\x00>', /^501 5\.1\.7 /],
      ['MAIL FROM:<a@x.test> SIZE=1\x00', /^50\d 5\.5\.4 /],
      ['MAIL FROM:<a@x.test>', /^250 /],
      ['RCPT TO:<b@y\x00.test>', /^501 5\.1\.3 /],
      ['RCPT TO:<"\x00"@y.test>', /^501 5\.1\.3 /],
    ];
    for (const [line, reply] of cases) expect(await s.send(Buffer.from(`${line}\r\n`, 'latin1'))).toMatch(reply);
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it('overlong and invalid UTF-8 in addresses is refused even with SMTPUTF8 (no "/" or "@" smuggled through decoding)', async () => {
    const gw = gateway(silentLogger, { limits: { maxErrors: 100 } });
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const bad = [
      Buffer.from([0xc0, 0xaf]), // overlong "/"
      Buffer.from([0xc1, 0x80]), // overlong "@"
      Buffer.from([0xe0, 0x80, 0xae]), // overlong "."
      Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // past U+10FFFF
      Buffer.from([0xff, 0xfe]),
    ];
    for (const b of bad) {
      const line = Buffer.concat([Buffer.from('MAIL FROM:<u'), b, Buffer.from('x@y.test> SMTPUTF8\r\n')]);
      expect(await s.send(line)).toMatch(/^501 5\.1\.7 /);
      const rcptDomain = Buffer.concat([Buffer.from('MAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<u@y'), b, Buffer.from('.test>\r\nRSET\r\n')]);
      expect(await s.send(rcptDomain)).toMatch(/^250 [^\r]*\r\n501 5\.1\.3 [^\r]*\r\n250 /);
    }
  });

  it('NUL and invalid UTF-8 in a DATA body are stored byte for byte (not a line ending, not a terminator)', async () => {
    const gw = gateway();
    const cap = capture();
    await gw.use(cap.plugin);
    const s = await testSession(gw);
    const body = Buffer.concat([Buffer.from('Subject: bin\r\n\r\n'), Buffer.from([0, 0xc0, 0xaf, 0xff, 0x2e, 0x0d, 0x0a]), Buffer.from('\x00.\r\nend\r\n')]);
    const out = await s.send(Buffer.concat([Buffer.from('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n'), body, Buffer.from('.\r\n')]));
    expect(out).toMatch(/\r\n250 2\.0\.0 OK: queued as /);
    const stored = cap.stored[0]!.bytes;
    expect(stored.subarray(stored.length - body.length).equals(body)).toBe(true);
  });
});

describe('AUTH abuse', () => {
  it('a 100 KB AUTH response: 500 5.5.6 once, no crash, the exchange is left and the session recovers', async () => {
    const seen: string[] = [];
    const t = await startTestGateway({ smtp: { authWithoutTls: true } }, (g) =>
      g.use(
        plugin('auth', ({ tap }) =>
          tap('auth', (_s, c) => {
            seen.push(c.username.slice(0, 20));
            return c.username === 'u' && c.password === 'p' ? accept() : undefined;
          }),
        ),
      ),
    );
    try {
      const c = await RawClient.connect(t.port);
      await c.waitFor(/^220 /);
      c.write('EHLO c.test\r\nAUTH PLAIN\r\n');
      await c.waitFor(/334 \r\n/);
      c.write(`${Buffer.alloc(75_000, 0x41).toString('base64')}\r\n`);
      await c.waitFor(/500 5\.5\.6 /);
      c.write('*\r\n'); // leave the exchange
      await c.waitFor(/501 5\.0\.0 Authentication cancelled/);
      c.write(`AUTH LOGIN ${Buffer.alloc(40_000, 0x42).toString('base64')}\r\nNOOP\r\n`);
      await c.waitFor(/500 5\.5\.6 [^\r]*\r\n250 2\.0\.0 OK\r\n$/);
      c.write(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}\r\n`);
      expect(await c.waitFor(/235 2\.7\.0 /)).toBe(true);
      expect(seen.every((u) => u === 'u')).toBe(true);
      c.destroy();
    } finally {
      await t.close();
    }
  });

  it('malformed SASL (bad base64, wrong NUL count, NULs in the user name) is refused with 501/535 and never reaches a plugin as an accept', async () => {
    const gw = gateway(silentLogger, { smtp: { authWithoutTls: true } });
    const seen: string[] = [];
    await gw.use(plugin('auth', ({ tap }) => tap('auth', (_s, c) => void seen.push(c.username))));
    const s = await testSession(gw);
    await s.send('EHLO c.test\r\n');
    const b64 = (x: string) => Buffer.from(x, 'latin1').toString('base64');
    const attempts = ['AUTH PLAIN ====', 'AUTH PLAIN a', `AUTH PLAIN ${b64('u\0p')}`, `AUTH PLAIN ${b64('\0\0\0u\0p')}`, `AUTH PLAIN ${b64('\0u\0')}`, 'AUTH PLAIN !!!!'];
    let replies = '';
    for (const a of attempts) replies += await s.send(`${a}\r\n`);
    expect(replyCodes(replies).every((c) => c === 501 || c === 535 || c === 421)).toBe(true);
    expect(replies).not.toMatch(/^235 /m);
  });
});
