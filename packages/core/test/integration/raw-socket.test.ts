/**
 * Raw-socket tests with SmtpTestClient: exactly the bytes we choose, to test
 * STARTTLS (and the CVE-2011-0411 command injection), timeouts, connection
 * limits, hostile input, size limits, IPv6 and graceful shutdown.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '@mailgate/core';
import { SmtpTestClient } from '@mailgate/core/testing';
import { authPlugin, haveIpv6Loopback, spoolFiles, startGateway, textBody, until, type IntegrationGateway } from './helpers.js';

const clients: SmtpTestClient[] = [];
async function open(port: number, host = '127.0.0.1', options: { tls?: boolean; localAddress?: string } = {}): Promise<SmtpTestClient> {
  const client = await SmtpTestClient.connect(port, host, options);
  clients.push(client);
  return client;
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

async function greeted(port: number, host?: string, options?: { tls?: boolean; localAddress?: string }): Promise<SmtpTestClient> {
  const c = await open(port, host, options);
  const greeting = await c.read();
  expect(greeting.code).toBe(220);
  return c;
}

async function ehlo(c: SmtpTestClient, name = 'client.test'): Promise<string[]> {
  const r = await c.command(`EHLO ${name}`);
  expect(r.code).toBe(250);
  return r.lines;
}

/** Resolve when a TCP connect to host:port is refused (nothing listens any more). */
function connectRefused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, host);
    s.once('connect', () => {
      s.destroy();
      res(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => res(e.code === 'ECONNREFUSED'));
  });
}

describe('STARTTLS', () => {
  let gw: IntegrationGateway;
  let gwNoAuth: IntegrationGateway;
  beforeAll(async () => {
    gw = await startGateway({ withTls: true }, async (g) => g.use(authPlugin({ u: 'p' })));
    gwNoAuth = await startGateway({ withTls: true });
  });
  afterAll(async () => {
    await Promise.all([gw?.close(), gwNoAuth?.close()]);
  });

  it('offers STARTTLS and not AUTH in plaintext; after TLS offers AUTH and not STARTTLS', async () => {
    const c = await greeted(gw.port);
    const before = await ehlo(c);
    expect(before).toContain('STARTTLS');
    expect(before.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect((await c.command('AUTH PLAIN AHUAcA==')).code).toBe(538);
    expect((await c.command('STARTTLS')).code).toBe(220);
    await c.startTls();
    const after = await ehlo(c);
    expect(after).not.toContain('STARTTLS');
    expect(after).toContain('AUTH PLAIN LOGIN');
    expect((await c.command('AUTH PLAIN AHUAcA==')).raw).toMatch(/^235 2\.7\.0 /);
  });

  // Found by this test: the engine decided "AUTH offered" with hooks.auth.isUsed(), which is
  // always true (tapable counts interceptors, and the gateway intercepts every hook), so every
  // TLS session listed AUTH and answered it with 535. engine.ts now counts the auth taps.
  it('without an auth tap, AUTH is never listed, not even after TLS', async () => {
    const c = await greeted(gwNoAuth.port);
    expect((await ehlo(c)).some((l) => l.startsWith('AUTH'))).toBe(false);
    expect((await c.command('STARTTLS')).code).toBe(220);
    await c.startTls();
    const after = await ehlo(c);
    expect(after.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect(after).not.toContain('STARTTLS');
    expect((await c.command('AUTH PLAIN AHUAcA==')).code).toBe(502);
  });

  it('forgets the session state after TLS: MAIL before a new EHLO gets 503', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('STARTTLS')).code).toBe(220);
    await c.startTls();
    expect((await c.command('MAIL FROM:<a@sender.test>')).raw).toMatch(/^503 5\.5\.1 /);
    await ehlo(c);
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await c.command('STARTTLS')).code).toBe(503);
  });

  it('a STARTTLS session releases its connection slot when it ends (QUIT or drop)', async () => {
    await until(() => gw.gateway.connections === 0, 'earlier sessions released');
    const c = await greeted(gw.port);
    await ehlo(c);
    await c.command('STARTTLS');
    await c.startTls();
    await ehlo(c);
    expect((await c.command('QUIT')).code).toBe(221);
    expect(await c.waitClosed()).toBe(true);
    const d = await greeted(gw.port);
    await ehlo(d);
    await d.command('STARTTLS');
    await d.startTls();
    d.close();
    await until(() => gw.gateway.connections === 0, 'TLS sessions released');
  });

  it('a second STARTTLS after TLS is refused', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    await c.command('STARTTLS');
    await c.startTls();
    await ehlo(c);
    expect((await c.command('STARTTLS')).raw).toMatch(/^503 5\.5\.1 TLS already active/);
  });

  it('CVE-2011-0411: "STARTTLS\\r\\nMAIL FROM:..." in one write; the injected MAIL is not executed', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    c.write('STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@example.test>\r\n');
    expect((await c.read()).code).toBe(220);
    // startTls() throws if any reply to the injected commands came in plaintext.
    await c.startTls();
    await ehlo(c);
    const rcpt = await c.command('RCPT TO:<victim@example.test>');
    expect(rcpt.raw).toMatch(/^503 5\.5\.1 Need MAIL/);
    expect((await c.command('NOOP')).code).toBe(250);
    expect(c.pending).toBe('');
  });

  it('CVE-2011-0411: "STARTTLS\\r\\nRSET\\r\\n" in one write; no extra reply appears after TLS', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    c.write('STARTTLS\r\nRSET\r\n');
    expect((await c.read()).code).toBe(220);
    await c.startTls();
    // The first reply inside TLS must be the EHLO's, not a leftover 250 for RSET.
    const r = await c.command('EHLO client.test');
    expect(r.code).toBe(250);
    expect(r.lines[0]).toMatch(/^mx\.test Hello client\.test/);
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    expect(c.pending).toBe('');
  });

  it('plaintext bytes sent just after STARTTLS in a separate packet are not executed either', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    c.write('STARTTLS\r\n');
    c.write('MAIL FROM:<evil@x.test>\r\n');
    expect((await c.read()).code).toBe(220);
    // The injected line reaches the TLS layer as garbage or is dropped: either the handshake
    // fails, or it succeeds and MAIL was not executed. It must never be answered in plaintext.
    try {
      await c.startTls();
    } catch (error) {
      expect(String(error)).not.toMatch(/server sent data after the STARTTLS reply/);
      return;
    }
    await ehlo(c);
    expect((await c.command('RCPT TO:<victim@example.test>')).code).toBe(503);
  });

  it('a TLS handshake that fails closes the connection and the gateway keeps serving', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('STARTTLS')).code).toBe(220);
    c.write(randomBytes(600));
    expect(await c.waitClosed(3_000)).toBe(true);
    const d = await greeted(gw.port);
    await ehlo(d);
  });

  it('implicit TLS port delivers mail (raw client)', async () => {
    const implicit = await startGateway({ withTls: true, listen: [{ host: '127.0.0.1', port: 0, tls: 'implicit' }] });
    try {
      const c = await greeted(implicit.port, '127.0.0.1', { tls: true });
      const lines = await ehlo(c);
      expect(lines).not.toContain('STARTTLS');
      expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
      expect((await c.command('RCPT TO:<b@example.test>')).code).toBe(250);
      expect((await c.command('DATA')).code).toBe(354);
      expect((await c.command('Subject: t\r\n\r\nimplicit\r\n.')).code).toBe(250);
      const [m] = await implicit.capture.waitFor(1);
      expect(m!.tls?.implicit).toBe(true);
      expect(m!.body.toString()).toBe('Subject: t\r\n\r\nimplicit\r\n');
      // Plaintext SMTP to an implicit-TLS port never gets a greeting and is dropped.
      const plain = await open(implicit.port);
      plain.write('EHLO client.test\r\n');
      await expect(plain.read(1_000)).rejects.toThrow();
    } finally {
      await implicit.close();
    }
  });
});

describe('idle timeout', () => {
  let gw: IntegrationGateway;
  beforeAll(async () => {
    gw = await startGateway({ limits: { idleTimeout: '300ms' } }, async (g) => {
      await g.use(
        definePlugin({
          name: 'test-slow',
          setup({ tap }) {
            // A slow decision (e.g. a DNS lookup) takes longer than the idle timeout.
            tap('rcpt', async (_s, _tx, rcpt) => {
              if (rcpt.address.local === 'slow') await new Promise((r) => setTimeout(r, 700));
              return undefined;
            });
          },
        }),
      );
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('an idle client gets 421 4.4.2 and is disconnected', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    const started = Date.now();
    const r = await c.read(3_000);
    expect(r.raw).toMatch(/^421 4\.4\.2 mx\.test Error: timeout exceeded\r\n$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await c.waitClosed(2_000)).toBe(true);
    await until(() => gw.gateway.connections === 0, 'connection released');
  });

  it('a client that keeps talking is not timed out', async () => {
    const c = await greeted(gw.port);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect((await c.command('NOOP')).code).toBe(250);
    }
  });

  it('a client idle in the middle of DATA is timed out and its spool file removed', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    await c.command('MAIL FROM:<a@sender.test>');
    await c.command('RCPT TO:<b@example.test>');
    expect((await c.command('DATA')).code).toBe(354);
    c.write(`Subject: partial\r\n\r\n${textBody(4000)}`);
    expect((await c.read(3_000)).code).toBe(421);
    expect(await c.waitClosed()).toBe(true);
    await until(async () => (await spoolFiles(gw)).length === 0, 'spool file removed');
    expect(gw.capture.messages).toHaveLength(0);
  });

  it('the server waiting on a slow plugin is not "client idle": the reply comes, not 421', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    const r = await c.command('RCPT TO:<slow@example.test>');
    expect(r.raw).toMatch(/^250 /);
  });
});

describe('timeouts before and around the session', () => {
  it('a client that connects to the implicit-TLS port and never starts the handshake is dropped after idleTimeout', async () => {
    const gw = await startGateway({ withTls: true, limits: { idleTimeout: '300ms' }, listen: [{ host: '127.0.0.1', port: 0, tls: 'implicit' }] });
    try {
      const silent = await open(gw.port);
      const started = Date.now();
      expect(await silent.waitClosed(3_000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(2_000);
      // The listener still serves a real TLS client afterwards.
      const c = await greeted(gw.port, '127.0.0.1', { tls: true });
      await ehlo(c);
    } finally {
      await gw.close();
    }
  });

  it('limits.dataTimeout ends a DATA phase that trickles in too slowly', async () => {
    const gw = await startGateway({ limits: { idleTimeout: '2s', dataTimeout: '500ms' } });
    try {
      const c = await greeted(gw.port);
      await ehlo(c);
      await c.command('MAIL FROM:<a@sender.test>');
      await c.command('RCPT TO:<b@example.test>');
      expect((await c.command('DATA')).code).toBe(354);
      const started = Date.now();
      const trickle = setInterval(() => c.write('x'), 100);
      try {
        const r = await c.read(2_000);
        expect(r.raw).toMatch(/^421 4\.4\.2 /);
        expect(Date.now() - started).toBeLessThan(1_500);
      } finally {
        clearInterval(trickle);
      }
      expect(await c.waitClosed()).toBe(true);
      expect(gw.capture.messages).toHaveLength(0);
    } finally {
      await gw.close();
    }
  });
});

describe('connection limits', () => {
  let gw: IntegrationGateway;
  beforeAll(async () => {
    gw = await startGateway({ limits: { maxConnections: 3, maxConnectionsPerIp: 2 } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('the third connection from one IP gets 421 4.7.0 and is closed; a freed slot is reused', async () => {
    await until(() => gw.gateway.connections === 0, 'previous test closed');
    const a = await greeted(gw.port);
    await greeted(gw.port);
    const extra = await open(gw.port);
    expect((await extra.read()).raw).toMatch(/^421 4\.7\.0 /);
    expect(await extra.waitClosed()).toBe(true);
    a.close();
    await until(() => gw.gateway.connections === 1, 'slot freed');
    await greeted(gw.port);
  });

  it('past maxConnections, a new address is refused too', async () => {
    await until(() => gw.gateway.connections === 0, 'previous test closed');
    await greeted(gw.port, '127.0.0.1', { localAddress: '127.0.0.1' });
    await greeted(gw.port, '127.0.0.1', { localAddress: '127.0.0.1' });
    await greeted(gw.port, '127.0.0.1', { localAddress: '127.0.0.2' });
    const extra = await open(gw.port, '127.0.0.1', { localAddress: '127.0.0.3' });
    const r = await extra.read();
    expect(r.raw).toBe('421 4.7.0 Too many connections, try again later\r\n');
    expect(await extra.waitClosed()).toBe(true);
    expect(gw.gateway.connections).toBe(3);
  });

  it('refused connections do not count: after the refusals all slots come back', async () => {
    await until(() => gw.gateway.connections === 0, 'all closed');
    const cs = [await greeted(gw.port), await greeted(gw.port, '127.0.0.1', { localAddress: '127.0.0.2' })];
    for (const c of cs) expect((await c.command('NOOP')).code).toBe(250);
  });
});

describe('hostile and broken clients', () => {
  let gw: IntegrationGateway;
  const disconnects: string[] = [];
  beforeAll(async () => {
    gw = await startGateway(
      // (no junk-command limit: it would close the NOOP flood below before TCP pushes back)
      { spool: { memoryThreshold: '16KB' }, limits: { maxMessageSize: '10MB', maxJunkCommands: 1_000_000_000 } },
      async (g) => {
        await g.use(
          definePlugin({
            name: 'test-disconnect-watch',
            setup({ tap }) {
              tap('disconnect', (s) => {
                disconnects.push(s.id);
              });
            },
          }),
        );
      },
      { keepBody: false },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('a client that disconnects mid-DATA leaves no spool file behind', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    await c.command('MAIL FROM:<a@sender.test>');
    await c.command('RCPT TO:<b@example.test>');
    expect((await c.command('DATA')).code).toBe(354);
    const n = disconnects.length;
    c.write(`Subject: big\r\n\r\n${textBody(3000)}`);
    await until(async () => (await spoolFiles(gw)).length > 0, 'the body spilled to a spool file');
    c.close();
    await until(() => disconnects.length > n, 'disconnect hook');
    expect(await spoolFiles(gw)).toEqual([]);
    expect(gw.capture.messages).toHaveLength(0);
  });

  it('garbage binary never crashes the gateway; it keeps serving new clients', async () => {
    for (let round = 0; round < 5; round++) {
      const c = await open(gw.port);
      c.write(randomBytes(4096));
      c.write(Buffer.from([0, 0xff, 0xfe, 0x0d, 0x0a, 0x80, 0x0a, 0x0d]));
      c.write(randomBytes(70_000));
      c.write('\r\n\r\nGET / HTTP/1.1\r\n');
      expect(await c.waitClosed(5_000)).toBe(true);
    }
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.test>')).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('Subject: after garbage\r\n\r\nok\r\n.')).code).toBe(250);
  });

  it('an over-long command line gets 500 5.5.6 and the session goes on', async () => {
    const c = await greeted(gw.port);
    c.write(`EHLO ${'x'.repeat(5000)}\r\n`);
    expect((await c.read()).raw).toMatch(/^500 5\.5\.6 /);
    expect((await c.command('NOOP')).code).toBe(250);
  });

  it('an HTTP request is recognised and closed', async () => {
    const c = await greeted(gw.port);
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await c.read()).raw).toMatch(/^421 4\.7\.0 /);
    expect(await c.waitClosed()).toBe(true);
  });

  it('a client that pipelines commands but never reads the replies is throttled, not buffered without bound', async () => {
    const c = await open(gw.port);
    const socket = (c as unknown as { socket: import('node:net').Socket }).socket;
    socket.pause(); // never read
    const chunk = Buffer.from('NOOP\r\n'.repeat(10_000));
    const baseline = process.memoryUsage().rss;
    let written = 0;
    let blocked = false;
    while (written < 40 * 1024 * 1024) {
      if (!socket.write(chunk)) {
        const drained = await Promise.race([
          new Promise<boolean>((r) => socket.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 500)),
        ]);
        if (!drained) {
          blocked = true;
          break;
        }
      }
      written += chunk.length;
    }
    // The gateway stopped reading once its replies stopped draining: TCP pushes back on the client.
    expect(blocked).toBe(true);
    expect(written).toBeLessThan(20 * 1024 * 1024);
    expect(process.memoryUsage().rss - baseline).toBeLessThan(100 * 1024 * 1024);
    c.close();
    const d = await greeted(gw.port);
    expect((await d.command('NOOP')).code).toBe(250);
  });

  it('a UTF-8 address without the SMTPUTF8 parameter is refused', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('MAIL FROM:<δοκιμή@sender.test>')).code).toBeGreaterThanOrEqual(500);
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await c.command('RCPT TO:<δοκιμή@example.test>')).code).toBeGreaterThanOrEqual(500);
  });

  // Python's send_message(msg, mail_options=['SMTPUTF8']) sends SMTPUTF8 twice (it appends its own).
  it('MAIL FROM with SMTPUTF8 given twice (as smtplib sends it) is accepted', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command('MAIL FROM:<ελένη@παράδειγμα.test> SMTPUTF8 SMTPUTF8 BODY=8BITMIME')).code).toBe(250);
  });

  it('BDAT (CHUNKING, no real client here uses it): chunks arrive byte for byte', async () => {
    const capture = await startGateway({});
    try {
      const c = await greeted(capture.port);
      expect(await ehlo(c)).toContain('CHUNKING');
      await c.command('MAIL FROM:<a@sender.test> BODY=8BITMIME');
      await c.command('RCPT TO:<b@example.test>');
      const part1 = Buffer.from('Subject: bdat\r\n\r\n.leading dot is not stuffed in BDAT\r\n');
      const part2 = Buffer.from([0xce, 0xb4, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x65, 0x6e, 0x64, 0x0d, 0x0a]);
      c.write(Buffer.concat([Buffer.from(`BDAT ${part1.length}\r\n`), part1]));
      expect((await c.read()).raw).toBe(`250 2.0.0 ${part1.length} octets received\r\n`);
      c.write(Buffer.concat([Buffer.from(`BDAT ${part2.length} LAST\r\n`), part2]));
      expect((await c.read()).code).toBe(250);
      const [m] = await capture.capture.waitFor(1);
      expect(m!.body.equals(Buffer.concat([part1, part2]))).toBe(true);
    } finally {
      await capture.close();
    }
  });

  it('MAIL FROM with SIZE= over the limit is refused at once with 552', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    expect((await c.command(`MAIL FROM:<a@sender.test> SIZE=${30 * 1024 * 1024}`)).raw).toMatch(/^552 5\.3\.4 /);
  });

  it('a 30 MB message over the 10 MB limit gets 552 after the data, memory stays bounded, no spool file left', async () => {
    const c = await greeted(gw.port);
    await ehlo(c);
    await c.command('MAIL FROM:<a@sender.test>');
    await c.command('RCPT TO:<b@example.test>');
    expect((await c.command('DATA')).code).toBe(354);
    const line = `${'x'.repeat(998)}\r\n`;
    const block = Buffer.from(line.repeat(1024)); // 1 MiB
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    let sawSpool = false;
    try {
      const socket = (c as unknown as { socket: import('node:net').Socket }).socket;
      for (let i = 0; i < 30; i++) {
        if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
        if (!sawSpool && i === 3) sawSpool = (await spoolFiles(gw)).length > 0;
      }
      c.write('.\r\n');
      const r = await c.read(20_000);
      expect(r.raw).toMatch(/^552 5\.3\.4 /);
    } finally {
      clearInterval(sampler);
    }
    expect(sawSpool).toBe(true);
    // The gateway and the client share this process; the gateway must not have buffered the message.
    expect(peak - baseline).toBeLessThan(60 * 1024 * 1024);
    expect(await spoolFiles(gw)).toEqual([]);
    // The session is still usable after the refusal.
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
  });
});

describe('spool and disconnect races', () => {
  // Found by this test: SmtpSession.ended() used to release the spool file as soon as the socket
  // closed, while the `queue` tap of that transaction was still reading it (ENOENT). engine.ts now
  // finishes a body already handed to data/queue before it cleans up.
  it('a client that disconnects while `queue` runs does not pull the spool file out from under the storage plugin', async () => {
    let queueError: unknown;
    let delivered: Buffer | undefined;
    let inQueue!: () => void;
    const queued = new Promise<void>((r) => (inQueue = r));
    let disconnected!: () => void;
    const gone = new Promise<void>((r) => (disconnected = r));
    const gw = await startGateway({ spool: { memoryThreshold: '4KB' } }, async (g) => {
      await g.use(
        definePlugin({
          name: 'test-slow-storage',
          setup({ tap }) {
            tap('disconnect', () => disconnected());
            tap('queue', async (_s, tx) => {
              inQueue();
              // Go on only once the gateway has seen the socket close, and give a premature
              // cleanup 50 ms to remove the spool file (it must not).
              await until(() => g.connections === 0, 'socket closed', 5_000, 5);
              const path = tx.message!.spoolPath!;
              await until(() => !existsSync(path), 'spool file removed', 50, 5).catch(() => undefined);
              try {
                delivered = await tx.message!.toBuffer();
              } catch (error) {
                queueError = error;
                throw error;
              }
              return undefined;
            });
          },
        }),
      );
    });
    try {
      const c = await greeted(gw.port);
      await ehlo(c);
      await c.command('MAIL FROM:<a@sender.test>');
      await c.command('RCPT TO:<b@example.test>');
      await c.command('DATA');
      const body = `Subject: race\r\n\r\n${'a line of text without dots\r\n'.repeat(600)}`;
      c.write(`${body}.\r\n`);
      await queued;
      // An RST: the connection is gone at once. (A FIN is a half-close now: the gateway would
      // finish `queue` and answer before closing, so the tap above would wait for nothing.)
      (c as unknown as { socket: Socket }).socket.resetAndDestroy();
      await gone;
      expect(queueError).toBeUndefined();
      expect(delivered?.subarray(-body.length).toString()).toBe(body);
      // Once the transaction is over, its spool file is gone.
      expect(await spoolFiles(gw)).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe('IPv6', () => {
  it('a listener on ::1 serves clients and records the IPv6 peer', async (ctx) => {
    if (!(await haveIpv6Loopback())) ctx.skip();
    const gw = await startGateway({ listen: [{ host: '::1', port: 0 }] });
    try {
      const c = await greeted(gw.port, '::1');
      const lines = await ehlo(c);
      expect(lines[0]).toBe('mx.test Hello client.test [::1]');
      await c.command('MAIL FROM:<a@sender.test>');
      await c.command('RCPT TO:<b@example.test>');
      await c.command('DATA');
      expect((await c.command('Subject: v6\r\n\r\nover ipv6\r\n.')).code).toBe(250);
      const [m] = await gw.capture.waitFor(1);
      expect(m!.added[0]).toContain('([IPv6:::1])');
      expect(await connectRefused(gw.port, '127.0.0.1')).toBe(true);
    } finally {
      await gw.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('an idle client gets 421 4.3.2 and is closed; afterwards nothing listens', async () => {
    const gw = await startGateway({});
    const port = gw.port;
    const c = await greeted(port);
    await ehlo(c);
    const closing = gw.gateway.close(5_000);
    const r = await c.read();
    expect(r.raw).toMatch(/^421 4\.3\.2 mx\.test Service shutting down/);
    expect(await c.waitClosed()).toBe(true);
    await closing;
    expect(gw.gateway.connections).toBe(0);
    expect(gw.gateway.addresses).toEqual([]);
    expect(await connectRefused(port)).toBe(true);
    await gw.close();
  });

  it('a client mid-transaction finishes its message (250), then gets 421 and is closed', async () => {
    const gw = await startGateway({});
    try {
      const c = await greeted(gw.port);
      const idle = await greeted(gw.port);
      await ehlo(c);
      expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
      expect((await c.command('RCPT TO:<b@example.test>')).code).toBe(250);
      const started = Date.now();
      const closing = gw.gateway.close(5_000);
      expect((await idle.read()).code).toBe(421);
      expect(await connectRefused(gw.port)).toBe(true);
      expect((await c.command('DATA')).code).toBe(354);
      const done = await c.command('Subject: last\r\n\r\nfinished during shutdown\r\n.');
      expect(done.raw).toMatch(/^250 2\.0\.0 /);
      expect((await c.read()).raw).toMatch(/^421 4\.3\.2 /);
      expect(await c.waitClosed()).toBe(true);
      await closing;
      expect(Date.now() - started).toBeLessThan(4_000);
      const [m] = await gw.capture.waitFor(1);
      expect(m!.body.toString()).toBe('Subject: last\r\n\r\nfinished during shutdown\r\n');
    } finally {
      await gw.close();
    }
  });

  it('a client that never finishes is dropped at the shutdown deadline', async () => {
    const gw = await startGateway({});
    try {
      const c = await greeted(gw.port);
      await ehlo(c);
      await c.command('MAIL FROM:<a@sender.test>');
      const started = Date.now();
      await gw.gateway.close(300);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await c.waitClosed(2_000)).toBe(true);
      expect(gw.gateway.connections).toBe(0);
    } finally {
      await gw.close();
    }
  });
});
