/**
 * AUTH PLAIN (RFC 4616, with and without initial response) and LOGIN, cancellation,
 * credentials refused, sequencing, TLS requirement (538 5.7.11); and STARTTLS on the
 * pure engine with a fake transport that "upgrades" (real TLS runs over sockets elsewhere).
 */
import { describe, expect, it } from 'vitest';
import { accept, tempfail, type Credentials, type EngineIO, type Gateway, type TlsInfo } from '../../src/index.js';
import { testSession } from '../../src/testing/index.js';
import { EHLO_REPLY, GREETING, OK_MAIL, OK_RCPT, lines, makeGateway, plugin, ready, splitReceived, storePlugin } from './helpers.js';

const TLS: TlsInfo = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', implicit: true };
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const OK = '235 2.7.0 Authentication successful\r\n';
const BAD = '535 5.7.8 Authentication credentials invalid\r\n';
const CANCELLED = '501 5.0.0 Authentication cancelled\r\n';

/** A gateway whose auth tap accepts alice/secret and records every credential it saw. */
async function authGateway(config: Parameters<typeof makeGateway>[0] = { smtp: { authWithoutTls: true } }) {
  const gw = makeGateway(config);
  const seen: Credentials[] = [];
  await gw.use(
    plugin('users', ({ tap }) =>
      tap('auth', (_s, c) => {
        seen.push({ ...c });
        if (c.username === 'boom') throw new Error('user store down');
        if (c.username === 'later') return tempfail();
        return c.username === 'alice' && c.password === 'secret' ? accept() : undefined;
      }),
    ),
  );
  return { gw, seen };
}

describe('AUTH PLAIN', () => {
  it('with an initial response', async () => {
    const { gw, seen } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe(OK);
    expect(s.session.user).toBe('alice');
    expect(seen).toEqual([{ mechanism: 'PLAIN', username: 'alice', password: 'secret', authzid: undefined }]);
  });

  it('with a 334 continuation, and an authorization identity', async () => {
    const { gw, seen } = await authGateway();
    const s = await ready(gw);
    expect(await s.send('AUTH PLAIN\r\n')).toBe('334 \r\n');
    expect(await s.send(`${b64('admin\0alice\0secret')}\r\n`)).toBe(OK);
    expect(seen[0]).toEqual({ mechanism: 'PLAIN', username: 'alice', password: 'secret', authzid: 'admin' });
  });

  it('mechanism name is case-insensitive; UTF-8 credentials are decoded', async () => {
    const { gw, seen } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`auth plain ${b64('\0jürgen\0pässwörd')}\r\n`)).toBe(BAD);
    expect(seen[0]).toMatchObject({ username: 'jürgen', password: 'pässwörd' });
  });

  it('wrong credentials: 535 5.7.8, and the client may try again', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0wrong')}\r\n`)).toBe(BAD);
    expect(s.session.user).toBeUndefined();
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe(OK);
  });

  it('* cancels; malformed responses are 501', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send('AUTH PLAIN\r\n*\r\n')).toBe('334 \r\n' + CANCELLED);
    expect(await s.send('AUTH PLAIN !!!notbase64\r\n')).toBe('501 5.5.2 Invalid AUTH PLAIN response\r\n');
    expect(await s.send(`AUTH PLAIN ${b64('alice:secret')}\r\n`)).toBe('501 5.5.2 Invalid AUTH PLAIN response\r\n');
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0')}\r\n`)).toBe('501 5.5.2 Invalid AUTH PLAIN response\r\n');
    expect(await s.send('AUTH PLAIN =\r\n')).toBe('501 5.5.2 Invalid AUTH PLAIN response\r\n');
    expect(await s.send(`AUTH PLAIN ${b64('\0a\0b')} extra\r\n`)).toBe('501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n');
    // Back in command mode after each.
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
  });
});

describe('AUTH LOGIN', () => {
  it('both steps', async () => {
    const { gw, seen } = await authGateway();
    const s = await ready(gw);
    expect(await s.send('AUTH LOGIN\r\n')).toBe('334 VXNlcm5hbWU6\r\n');
    expect(await s.send(`${b64('alice')}\r\n`)).toBe('334 UGFzc3dvcmQ6\r\n');
    expect(await s.send(`${b64('secret')}\r\n`)).toBe(OK);
    expect(seen).toEqual([{ mechanism: 'LOGIN', username: 'alice', password: 'secret', authzid: undefined }]);
    expect(s.session.user).toBe('alice');
  });

  it('with the user name as initial response, pipelined', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`AUTH LOGIN ${b64('alice')}\r\n${b64('secret')}\r\n`)).toBe('334 UGFzc3dvcmQ6\r\n' + OK);
  });

  it('* cancels at either step; bad base64 is 501; wrong password 535', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send('AUTH LOGIN\r\n*\r\n')).toBe('334 VXNlcm5hbWU6\r\n' + CANCELLED);
    expect(await s.send(`AUTH LOGIN\r\n${b64('alice')}\r\n*\r\n`)).toBe('334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n' + CANCELLED);
    expect(await s.send('AUTH LOGIN\r\nabc\r\n')).toBe('334 VXNlcm5hbWU6\r\n501 5.5.2 Invalid base64 in AUTH LOGIN response\r\n');
    expect(await s.send(`AUTH LOGIN ${b64('alice')}\r\n@@@@\r\n`)).toBe('334 UGFzc3dvcmQ6\r\n501 5.5.2 Invalid base64 in AUTH LOGIN response\r\n');
    expect(await s.send(`AUTH LOGIN ${b64('alice')}\r\n${b64('nope')}\r\n`)).toBe('334 UGFzc3dvcmQ6\r\n' + BAD);
    expect(await s.send('NOOP\r\n')).toBe('250 2.0.0 OK\r\n');
    expect(s.session.user).toBeUndefined();
  });

  it('a response line is never read as a command', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    // "QUIT" is valid base64: it is a user name, then a password, never the command.
    expect(await s.send('AUTH LOGIN\r\nQUIT\r\nQUIT\r\n')).toBe('334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n' + BAD);
    expect(s.closed).toBe(false);
  });
});

describe('AUTH sequencing and policy', () => {
  it('AUTH twice is 503', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`);
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe('503 5.5.1 Already authenticated\r\n');
  });

  it('AUTH during a mail transaction is 503', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`MAIL FROM:<a@b.test>\r\nAUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe(
      OK_MAIL + '503 5.5.1 AUTH not allowed during a mail transaction\r\n',
    );
    expect(s.session.user).toBeUndefined();
  });

  it('AUTH after HELO (not EHLO) is 503', async () => {
    const { gw } = await authGateway();
    const s = await testSession(gw);
    await s.send('HELO c.test\r\n');
    expect(await s.send('AUTH PLAIN\r\n')).toBe('503 5.5.1 Send EHLO first\r\n');
  });

  it('AUTH without TLS is 538 5.7.11 (no credentials read); over TLS it works', async () => {
    const { gw, seen } = await authGateway({});
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe('538 5.7.11 Encryption required for requested authentication mechanism\r\n');
    expect(await s.send('AUTH LOGIN\r\n')).toBe('538 5.7.11 Encryption required for requested authentication mechanism\r\n');
    expect(seen).toHaveLength(0);
    const t = await ready(gw, { tls: TLS });
    expect(await t.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe(OK);
  });

  it('without any auth tap AUTH is 502, even with authWithoutTls or over TLS', async () => {
    const gw = makeGateway({ smtp: { authWithoutTls: true } });
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`)).toBe('502 5.5.1 AUTH not available\r\n');
    const t = await ready(gw, { tls: TLS });
    expect(await t.send('AUTH LOGIN\r\n')).toBe('502 5.5.1 AUTH not available\r\n');
  });

  it('unknown mechanism is 504', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send('AUTH CRAM-MD5\r\n')).toBe('504 5.5.4 Unrecognized authentication mechanism\r\n');
    expect(await s.send('AUTH\r\n')).toBe('504 5.5.4 Unrecognized authentication mechanism\r\n');
  });

  it('a failing or tempfailing credential store is 454 4.7.0, never a success', async () => {
    const { gw } = await authGateway();
    const s = await ready(gw);
    expect(await s.send(`AUTH PLAIN ${b64('\0boom\0x')}\r\n`)).toBe('454 4.7.0 Temporary authentication failure\r\n');
    expect(await s.send(`AUTH PLAIN ${b64('\0later\0x')}\r\n`)).toBe('454 4.7.0 Temporary authentication failure\r\n');
    expect(s.session.user).toBeUndefined();
  });

  it('failed attempts count toward maxErrors', async () => {
    const { gw } = await authGateway({ smtp: { authWithoutTls: true }, limits: { maxErrors: 3 } });
    const s = await ready(gw);
    const bad = `AUTH PLAIN ${b64('\0alice\0wrong')}\r\n`;
    expect(await s.send(bad + bad + bad + bad)).toBe(BAD + BAD + BAD + '421 4.7.0 Too many errors, closing connection\r\n');
    expect(s.closed).toBe(true);
  });

  it('the Received header says ESMTPA after AUTH, ESMTPSA over TLS', async () => {
    for (const [peer, keyword] of [
      [{}, 'ESMTPA'],
      [{ tls: TLS }, 'ESMTPSA'],
    ] as const) {
      const { gw } = await authGateway();
      const store = storePlugin('store', { domains: ['example.test'] });
      await gw.use(store.plugin);
      const s = await ready(gw, peer);
      await s.send(`AUTH PLAIN ${b64('\0alice\0secret')}\r\n`);
      expect(await s.send(lines('MAIL FROM:<alice@b.test>', 'RCPT TO:<x@example.test>', 'DATA', 'hi', '.'))).toMatch(/queued/);
      expect(splitReceived(store.stored[0]!.bytes).received).toContain(` with ${keyword} id `);
    }
  });
});

describe('STARTTLS (engine only, fake upgrade)', () => {
  /** A byte transport like the test one, plus a startTls that succeeds or fails. */
  function tlsSession(gw: Gateway, outcome: 'ok' | 'fail' = 'ok') {
    const state = { output: '', closed: false, upgrades: 0 };
    const io: EngineIO = {
      write: (d) => void (state.output += d),
      close: () => void (state.closed = true),
      pause: () => undefined,
      resume: () => undefined,
      startTls: async () => {
        state.upgrades++;
        if (outcome === 'fail') throw new Error('handshake failed');
        return { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', implicit: false };
      },
    };
    const session = gw.openSession(io, { tlsAvailable: true, id: 'TLS' });
    let taken = 0;
    const send = async (text: string): Promise<string> => {
      session.feed(Buffer.from(text));
      await session.settled();
      const out = state.output.slice(taken);
      taken = state.output.length;
      return out;
    };
    return { session, state, send };
  }

  it('220, then everything learned before is forgotten and pipelined plaintext is dropped (CVE-2011-0411)', async () => {
    const { gw, seen } = await authGateway({});
    const store = storePlugin('store', { domains: ['example.test'] });
    await gw.use(store.plugin);
    const t = tlsSession(gw);
    await t.session.start();
    expect(await t.send('')).toBe(GREETING);
    expect(await t.send('EHLO c.test\r\n')).toBe(EHLO_REPLY.replace('250 CHUNKING\r\n', '250-CHUNKING\r\n250 STARTTLS\r\n'));
    expect(await t.send(`STARTTLS\r\nAUTH PLAIN ${b64('\0alice\0secret')}\r\nMAIL FROM:<a@b.test>\r\n`)).toBe('220 2.0.0 Ready to start TLS\r\n');
    expect(t.state.upgrades).toBe(1);
    expect(seen).toHaveLength(0);
    expect(t.session.tls).toEqual({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', implicit: false });
    expect(t.session.heloName).toBeUndefined();
    expect(await t.send('MAIL FROM:<a@b.test>\r\n')).toBe('503 5.5.1 Send HELO/EHLO first\r\n');
    // After TLS: no STARTTLS offered, AUTH is.
    expect(await t.send('EHLO c.test\r\n')).toBe(EHLO_REPLY.replace('250 CHUNKING\r\n', '250-CHUNKING\r\n250 AUTH PLAIN LOGIN\r\n'));
    expect(await t.send('STARTTLS\r\n')).toBe('503 5.5.1 TLS already active\r\n');
    expect(await t.send(lines('MAIL FROM:<a@b.test>', 'RCPT TO:<x@example.test>', 'DATA', 'hi', '.'))).toMatch(
      new RegExp(`^${OK_MAIL}${OK_RCPT}354 [^\\r]*\\r\\n250 2\\.0\\.0 OK: queued as TLS\\.1\\r\\n$`),
    );
    expect(splitReceived(store.stored[0]!.bytes).received).toContain(' with ESMTPS id ');
  });

  it('a command the client sends right after the handshake is not lost while a slow reset hook runs', async () => {
    const gw = makeGateway();
    await gw.use(storePlugin('store', { domains: ['example.test'] }).plugin);
    await gw.use(plugin('slow-reset', ({ tap }) => tap('reset', async () => void (await new Promise((r) => setTimeout(r, 30))))));
    const t = tlsSession(gw);
    await t.session.start();
    await t.send('EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n');
    // The client speaks as soon as the handshake is done (its bytes arrive in a later macrotask).
    const handshake = t.send('STARTTLS\r\n');
    await new Promise((r) => setTimeout(r, 5));
    t.session.feed(Buffer.from('EHLO c.test\r\n'));
    expect(await handshake).toMatch(/^220 2\.0\.0 Ready to start TLS\r\n250-mx\.test Hello c\.test/);
    expect(t.session.transaction).toBeUndefined();
    expect(t.session.heloName).toBe('c.test');
  });

  it('STARTTLS with an argument is 501; a failed handshake closes', async () => {
    const gw = makeGateway();
    const t = tlsSession(gw, 'fail');
    await t.session.start();
    await t.send('EHLO c.test\r\n');
    expect(await t.send('STARTTLS now\r\n')).toBe('501 5.5.4 Syntax: STARTTLS\r\n');
    expect(await t.send('STARTTLS\r\n')).toBe('220 2.0.0 Ready to start TLS\r\n');
    expect(t.state.closed).toBe(true);
    expect(t.session.closed).toBe(true);
  });
});
