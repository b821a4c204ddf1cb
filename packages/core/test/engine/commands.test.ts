/**
 * RFC 5321 commands and their misuse, on bytes: exact replies, enhanced codes, and
 * when the engine closes the connection.
 */
import { describe, expect, it } from 'vitest';
import { accept } from '../../src/index.js';
import { testSession } from '../../src/testing/index.js';
import {
  EHLO_REPLY,
  GREETING,
  OK_MAIL,
  OK_RCPT,
  checkReplies,
  discardPlugin,
  lines,
  makeGateway,
  plugin,
  ready,
  storeGateway,
  storePlugin,
} from './helpers.js';

const authPlugin = plugin('auth', ({ tap }) => tap('auth', (_s, c) => (c.username === 'u' && c.password === 'p' ? accept() : undefined)));

describe('greeting and EHLO/HELO', () => {
  it('greets with the hostname and an optional banner', async () => {
    const s = await testSession(makeGateway());
    expect(s.output).toBe(GREETING);
    const t = await testSession(makeGateway({ smtp: { banner: 'Mailgate test' } }));
    expect(t.output).toBe('220 mx.test ESMTP Mailgate test\r\n');
  });

  it('EHLO lists exactly the default extensions (no STARTTLS without TLS, no AUTH without a tap)', async () => {
    const s = await testSession(makeGateway());
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
  });

  it('EHLO offers STARTTLS only when a TLS context is available, and not once TLS is on', async () => {
    const gw = makeGateway();
    const s = await testSession(gw, { tlsAvailable: true });
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY.replace('250 CHUNKING\r\n', '250-CHUNKING\r\n250 STARTTLS\r\n'));
    const t = await testSession(gw, { tlsAvailable: true, tls: { protocol: 'TLSv1.3', cipher: 'x', implicit: true } });
    expect(await t.send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
  });

  it('EHLO advertises AUTH only with an auth tap and only over TLS unless authWithoutTls', async () => {
    const tls = { protocol: 'TLSv1.3', cipher: 'x', implicit: true };
    const withAuth = EHLO_REPLY.replace('250 CHUNKING\r\n', '250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n');

    const noTap = makeGateway({ smtp: { authWithoutTls: true } });
    await noTap.use(discardPlugin, { domains: ['example.test'] });
    expect(await (await testSession(noTap)).send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
    expect(await (await testSession(noTap, { tls })).send('EHLO c.test\r\n')).toBe(EHLO_REPLY);

    const plain = makeGateway();
    await plain.use(authPlugin);
    expect(await (await testSession(plain)).send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
    expect(await (await testSession(plain, { tls })).send('EHLO c.test\r\n')).toBe(withAuth);

    const relaxed = makeGateway({ smtp: { authWithoutTls: true } });
    await relaxed.use(authPlugin);
    expect(await (await testSession(relaxed)).send('EHLO c.test\r\n')).toBe(withAuth);
  });

  it('EHLO follows the smtp options and limits', async () => {
    const gw = makeGateway({ smtp: { pipelining: false, chunking: false, smtputf8: false, dsn: false }, limits: { maxMessageSize: '1MB' } });
    const s = await testSession(gw);
    expect(await s.send('EHLO c.test\r\n')).toBe(
      lines('250-mx.test Hello c.test [127.0.0.1]', '250-SIZE 1048576', '250-8BITMIME', '250 ENHANCEDSTATUSCODES'),
    );
  });

  it('a helo tap may add capabilities', async () => {
    const gw = makeGateway();
    await gw.use(plugin('xclient', ({ tap }) => tap('helo', (_s, info) => void info.extensions.push('XCLIENT ADDR'))));
    const s = await testSession(gw);
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY.replace('250 CHUNKING\r\n', '250-CHUNKING\r\n250 XCLIENT ADDR\r\n'));
  });

  it('HELO answers one line; the peer address literal is shown', async () => {
    const s = await testSession(makeGateway(), { remoteAddress: '192.0.2.7' });
    expect(await s.send('HELO c.test\r\n')).toBe('250 mx.test Hello c.test [192.0.2.7]\r\n');
    expect(s.session.esmtp).toBe(false);
    expect(s.session.heloName).toBe('c.test');
  });

  it('HELO/EHLO without a name, or with two words, is a 501', async () => {
    const s = await testSession(makeGateway());
    expect(await s.send('EHLO\r\n')).toBe('501 5.5.4 Syntax: EHLO hostname\r\n');
    expect(await s.send('HELO\r\n')).toBe('501 5.5.4 Syntax: HELO hostname\r\n');
    expect(await s.send('EHLO a b\r\n')).toBe('501 5.5.4 Syntax: EHLO hostname\r\n');
    expect(await s.send('EHLO  \r\n')).toBe('501 5.5.4 Syntax: EHLO hostname\r\n');
  });

  it('commands are case-insensitive and accept an address literal as HELO name', async () => {
    const { gw } = await storeGateway();
    const s = await testSession(gw);
    expect(await s.send('ehlo [192.0.2.1]\r\n')).toMatch(/^250-mx\.test Hello \[192\.0\.2\.1\] \[127\.0\.0\.1\]\r\n/);
    expect(await s.send('mail from:<a@b.test>\r\nrcpt to:<x@example.test>\r\nrset\r\n')).toBe(OK_MAIL + OK_RCPT + '250 2.0.0 OK\r\n');
  });

  it('a second EHLO resets the transaction', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
    expect(await s.send('EHLO c.test\r\n')).toBe(EHLO_REPLY);
    expect(s.session.transaction).toBeUndefined();
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
  });
});

describe('MAIL and RCPT syntax', () => {
  it('accepts quoted local parts, address literals, the null sender and source routes', async () => {
    const { gw } = await storeGateway({}, { domains: '*' });
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<"john doe"@example.org>\r\n')).toBe(OK_MAIL);
    expect(
      await s.send(
        lines(
          'RCPT TO:<"a b"@example.test>',
          'RCPT TO:<"a\\"b"@example.test>',
          'RCPT TO:<user@[192.0.2.1]>',
          'RCPT TO:<user@[IPv6:2001:db8::1]>',
          'RCPT TO:<@relay.test:x@example.test>',
          'RCPT TO:<postmaster>',
        ),
      ),
    ).toBe(OK_RCPT.repeat(6));
    expect(await s.send('RSET\r\nMAIL FROM:<>\r\n')).toBe('250 2.0.0 OK\r\n' + OK_MAIL);
  });

  it.each([
    ['MAIL FROM:a@b.test', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<a@b.test', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<a b@c.test>', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<@>', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<a@>', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<a..b@c.test>', '501 5.1.7 Bad sender address syntax'],
    ['MAIL FROM:<a@b.test>x', '501 5.1.7 Bad sender address syntax'],
    ['MAIL TO:<a@b.test>', '501 5.5.4 Syntax: MAIL FROM:<address>'],
    ['MAIL', '501 5.5.4 Syntax: MAIL FROM:<address>'],
    ['MAIL FROM:<a@b.test> FOO=bar', '555 5.5.4 Unsupported MAIL parameter FOO'],
    ['MAIL FROM:<a@b.test> SIZE=abc', '501 5.5.4 Bad SIZE parameter'],
    ['MAIL FROM:<a@b.test> SIZE=26214401', '552 5.3.4 Message size exceeds fixed maximum message size'],
    ['MAIL FROM:<a@b.test> BODY=BINARYMIME', '501 5.5.4 Bad BODY parameter'],
    ['MAIL FROM:<ü@b.test>', '553 5.6.7 Non-ASCII address requires SMTPUTF8'],
  ])('%s → %s', async (command, reply) => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send(`${command}\r\n`)).toBe(`${reply}\r\n`);
    // The session is still usable and no transaction was opened.
    expect(s.session.transaction).toBeUndefined();
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
  });

  it('accepts the parameters it advertises', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test> SIZE=26214400 BODY=8BITMIME AUTH=<>\r\n')).toBe(OK_MAIL);
    expect(s.session.transaction!.declaredSize).toBe(26214400);
    expect(s.session.transaction!.bodyType).toBe('8BITMIME');
    expect(await s.send('RSET\r\nMAIL FROM:<ü@b.test> SMTPUTF8\r\nRCPT TO:<ü@example.test>\r\n')).toBe('250 2.0.0 OK\r\n' + OK_MAIL + OK_RCPT);
  });

  it('SMTPUTF8 is refused after HELO and when disabled', async () => {
    const { gw } = await storeGateway();
    const s = await testSession(gw);
    await s.send('HELO c.test\r\n');
    expect(await s.send('MAIL FROM:<a@b.test> SMTPUTF8\r\n')).toBe('555 5.5.4 SMTPUTF8 not supported\r\n');
    const off = makeGateway({ smtp: { smtputf8: false } });
    const t = await ready(off);
    expect(await t.send('MAIL FROM:<a@b.test> SMTPUTF8\r\n')).toBe('555 5.5.4 SMTPUTF8 not supported\r\n');
  });

  it.each([
    ['RCPT TO:<a@@b.test>', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT TO:a@example.test', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT TO:<>', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT TO:<a@-b.test>', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT TO:<user@[999.1.1.1]>', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT TO:<a\0b@example.test>', '501 5.1.3 Bad recipient address syntax'],
    ['RCPT FROM:<a@example.test>', '501 5.5.4 Syntax: RCPT TO:<address>'],
    ['RCPT TO:<a@example.test> FOO=1', '555 5.5.4 Unsupported RCPT parameter FOO'],
    ['RCPT TO:<a@example.test> RET=HDRS', '555 5.5.4 Unsupported RCPT parameter RET'],
    ['RCPT TO:<ü@example.test>', '553 5.6.7 Non-ASCII address requires SMTPUTF8'],
  ])('%s → %s', async (command, reply) => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    await s.send('MAIL FROM:<a@b.test>\r\n');
    expect(await s.send(`${command}\r\n`)).toBe(`${reply}\r\n`);
    expect(s.session.transaction!.recipients).toHaveLength(0);
  });
});

describe('bad sequence (503)', () => {
  it('MAIL before EHLO', async () => {
    const { gw } = await storeGateway();
    const s = await testSession(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe('503 5.5.1 Send HELO/EHLO first\r\n');
  });

  it('RCPT before MAIL', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('RCPT TO:<x@example.test>\r\n')).toBe('503 5.5.1 Need MAIL before RCPT\r\n');
  });

  it('DATA before MAIL, DATA before RCPT', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('DATA\r\n')).toBe('503 5.5.1 Need MAIL command\r\n');
    expect(await s.send('MAIL FROM:<a@b.test>\r\nDATA\r\n')).toBe(OK_MAIL + '503 5.5.1 Need RCPT command\r\n');
  });

  it('DATA after every RCPT was refused is 554 no valid recipients', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n')).toBe(
      OK_MAIL + '554 5.7.1 <x@elsewhere.test>: Relay access denied\r\n554 5.5.1 No valid recipients\r\n',
    );
  });

  it('nested MAIL', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\nMAIL FROM:<c@d.test>\r\n')).toBe(OK_MAIL + '503 5.5.1 Nested MAIL command\r\n');
    expect(s.session.transaction!.senderText).toBe('a@b.test');
  });

  it('AUTH before EHLO', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    await gw.use(authPlugin);
    const s = await testSession(gw);
    expect(await s.send('AUTH PLAIN\r\n')).toBe('503 5.5.1 Send EHLO first\r\n');
  });
});

describe('other commands', () => {
  it('RSET, NOOP', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
    expect(await s.send('NOOP anything goes\r\n')).toBe('250 2.0.0 OK\r\n');
    expect(await s.send('MAIL FROM:<a@b.test>\r\nRSET\r\n')).toBe(OK_MAIL + '250 2.0.0 OK\r\n');
    expect(s.session.transaction).toBeUndefined();
    expect(await s.send('RSET now\r\n')).toBe('501 5.5.4 Syntax: RSET\r\n');
    // RSET before EHLO is fine too.
    const t = await testSession(gw);
    expect(await t.send('RSET\r\n')).toBe('250 2.0.0 OK\r\n');
  });

  it('QUIT answers 221 and closes; nothing after it is answered', async () => {
    const { gw } = await storeGateway();
    const s = await ready(gw);
    expect(await s.send('QUIT\r\nNOOP\r\n')).toBe('221 2.0.0 mx.test closing connection\r\n');
    expect(s.closed).toBe(true);
    expect(await s.send('NOOP\r\n')).toBe('');
  });

  it('VRFY is 252, EXPN is 502, HELP is 214', async () => {
    const s = await ready(makeGateway());
    expect(await s.send('VRFY postmaster\r\n')).toBe('252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n');
    expect(await s.send('VRFY\r\n')).toBe('501 5.5.4 Syntax: VRFY address\r\n');
    expect(await s.send('EXPN staff\r\n')).toBe('502 5.5.1 EXPN command is disabled\r\n');
    expect(await s.send('HELP\r\n')).toBe(
      lines('214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH', '214 2.0.0 See RFC 5321'),
    );
    const off = await ready(makeGateway({ smtp: { vrfy: false } }));
    expect(await off.send('VRFY postmaster\r\n')).toBe('502 5.5.1 VRFY command is disabled\r\n');
  });

  it('unknown commands are 500 5.5.2; an empty line too', async () => {
    const s = await ready(makeGateway());
    expect(await s.send('FOO bar\r\n')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(await s.send('\r\n')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(s.closed).toBe(false);
  });

  it('too many unknown commands: 421 and close', async () => {
    const s = await ready(makeGateway({ limits: { maxUnrecognizedCommands: 3 } }));
    const out = await s.send('X1\r\nX2\r\nX3\r\nX4\r\nNOOP\r\n');
    expect(out).toBe('500 5.5.2 Command not recognized\r\n'.repeat(3) + '421 4.7.0 Too many unrecognized commands, closing connection\r\n');
    expect(s.closed).toBe(true);
  });

  it.each(['GET / HTTP/1.1', 'POST /login HTTP/1.1', 'CONNECT mx.test:25 HTTP/1.1', 'Subject: hello', 'From: a@b.test'])(
    '%s is not SMTP: 421 and close',
    async (line) => {
      const s = await testSession(makeGateway());
      expect(await s.send(`${line}\r\nHost: mx.test\r\n\r\n`)).toBe('421 4.7.0 Not an SMTP client, closing connection\r\n');
      expect(s.closed).toBe(true);
    },
  );

  it('STARTTLS without a TLS context is 502', async () => {
    const s = await ready(makeGateway());
    expect(await s.send('STARTTLS\r\n')).toBe('502 5.5.1 STARTTLS not available\r\n');
    // tlsAvailable but the byte transport cannot upgrade (the test IO): also 502, never a fake 220.
    const t = await ready(makeGateway(), { tlsAvailable: true });
    expect(await t.send('STARTTLS\r\n')).toBe('502 5.5.1 STARTTLS not available\r\n');
  });

  it('requireTls refuses MAIL before TLS', async () => {
    // requireTls needs a tls section; its files are only read by listen(), never here.
    const gw = makeGateway({ tls: { key: '/nonexistent/key.pem', cert: '/nonexistent/cert.pem' }, smtp: { requireTls: true } });
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    const s = await ready(gw);
    expect(await s.send('MAIL FROM:<a@b.test>\r\n')).toBe('530 5.7.0 Must issue a STARTTLS command first\r\n');
    const t = await ready(gw, { tls: { protocol: 'TLSv1.3', cipher: 'x', implicit: true } });
    expect(await t.send('MAIL FROM:<a@b.test>\r\n')).toBe(OK_MAIL);
  });

  it('every reply of a long mixed dialogue is well formed', async () => {
    const { gw } = await storeGateway();
    const s = await testSession(gw);
    const out =
      s.output +
      (await s.send(
        lines('EHLO c.test', 'HELP', 'VRFY x', 'EXPN x', 'NOOP', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'RSET', 'FOO', 'QUIT'),
      ));
    expect(checkReplies(out).map((r) => r.code)).toEqual([220, 250, 214, 252, 502, 250, 250, 250, 250, 500, 221]);
  });
});
