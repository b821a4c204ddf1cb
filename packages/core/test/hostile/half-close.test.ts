/**
 * Half-close on real loopback sockets: a client that sends its whole dialogue and then
 * shuts down its sending side (TCP FIN, `nc -N`, shutdown(SHUT_WR); over TLS a
 * close_notify) still gets every reply, on plain, STARTTLS and implicit-TLS connections;
 * a FIN that cuts a message queues nothing; and however a connection ends, its slot and
 * its file descriptors come back.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTestCertificate, startTestGateway, type TestCertificate, type TestGateway } from '@mailgate/core/testing';
import { capture, fdCount, listDir, plugin, RawClient, replyCodes, sleep, trackedClients, until } from './helpers.js';

const TRANSACTION = 'EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n';
const QUEUE_MS = 150;

const clients = trackedClients();
const client = clients.connect;

/** The TCP socket under a client made by startTls. */
const tcpOf = new WeakMap<RawClient, Socket>();

/** STARTTLS on a plain connection; resolves with a client reading the TLS side. */
async function startTls(port: number): Promise<RawClient> {
  const plain = await client(port);
  plain.write('EHLO c.test\r\nSTARTTLS\r\n');
  expect(await plain.waitFor(/220 2\.0\.0 /)).toBe(true);
  plain.socket.removeAllListeners('data');
  const secure: TLSSocket = tlsConnect({ socket: plain.socket, rejectUnauthorized: false });
  const c = new RawClient(secure);
  tcpOf.set(c, plain.socket as Socket);
  clients.track(c);
  await new Promise((r) => secure.once('secureConnect', r));
  return c;
}

interface Counts {
  open: number;
  clients: number;
}
/** White box: the gateway's connection table (admitted connections and per-client counters). */
const countsOf = (t: TestGateway): Counts => (t.gateway as unknown as { table: { counts: Counts } }).table.counts;

let cert: TestCertificate;
let t: TestGateway;
const cap = capture();
const disconnects: string[] = [];
const spool = () => listDir(join(t.dir, 'spool'));
const plainPort = () => t.gateway.addresses[0]!.port;
const implicitPort = () => t.gateway.addresses[1]!.port;

beforeAll(async () => {
  cert = await generateTestCertificate('localhost');
  t = await startTestGateway(
    {
      tls: { key: cert.keyFile, cert: cert.certFile },
      listen: [
        { host: '127.0.0.1', port: 0, tls: 'starttls' },
        { host: '127.0.0.1', port: 0, tls: 'implicit' },
      ],
      // Every body goes to a spool file, so a leftover one would show.
      spool: { memoryThreshold: 0 },
      limits: { idleTimeout: '10s', maxConnectionsPerIp: 20, maxConnections: 400 },
    },
    async (g) => {
      await g.use(
        plugin('slow-store', ({ tap }) => {
          tap('queue', async () => {
            await sleep(QUEUE_MS); // a store that takes a while: the replies come after the FIN
            return undefined;
          });
          tap('disconnect', (s) => void disconnects.push(s.id));
        }),
      );
      await g.use(cap.plugin);
    },
  );
});
afterAll(async () => {
  await t?.close();
});

async function allGone(): Promise<void> {
  await until(() => t.gateway.connections === 0, 'all sessions gone', 10_000);
  await until(() => countsOf(t).open === 0 && countsOf(t).clients === 0, `slots back (${JSON.stringify(countsOf(t))})`, 5_000);
}

function expectWholeDialogue(c: RawClient): void {
  expect(c.text).toMatch(/250 2\.0\.0 OK: queued as /);
  expect(c.text).toMatch(/221 2\.0\.0 /);
}

describe('a client that half-closes after its whole dialogue gets every reply', () => {
  it('plain: 250 and 221 come after the FIN, the message is queued once, the connection closes', async () => {
    const before = cap.stored.length;
    const c = await client(plainPort());
    expect(await c.waitFor(/^220 /)).toBe(true);
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expectWholeDialogue(c);
    expect(replyCodes(c.text)).toEqual([220, 250, 250, 250, 354, 250, 221]);
    await sleep(50);
    expect(cap.stored.length).toBe(before + 1);
    await allGone();
  });

  it('plain, before the greeting: the FIN arrives while the connect stage runs, the replies still come', async () => {
    const before = cap.stored.length;
    const c = await client(plainPort());
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([220, 250, 250, 250, 354, 250, 221]);
    expect(cap.stored.length).toBe(before + 1);
  });

  it('plain, two pipelined messages and no QUIT: both answered and queued, then closed', async () => {
    const before = cap.stored.length;
    const c = await client(plainPort());
    const tx = (n: number) => `MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
    c.socket.end(`EHLO c.test\r\n${tx(1)}${tx(2)}`);
    expect(await c.waitClosed(3_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([220, 250, 250, 250, 354, 250, 250, 250, 354, 250]);
    expect(cap.stored.length).toBe(before + 2);
  });

  it('STARTTLS: the dialogue and the close_notify over TLS, then the replies over TLS', async () => {
    const before = cap.stored.length;
    const c = await startTls(plainPort());
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([250, 250, 250, 354, 250, 221]);
    expect(cap.stored.length).toBe(before + 1);
    expect(cap.stored.at(-1)!.helo).toBe('c.test');
    await allGone();
  });

  it('implicit TLS: the dialogue and the close_notify right after the handshake', async () => {
    const before = cap.stored.length;
    const c = await client(implicitPort(), { tls: true });
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([220, 250, 250, 250, 354, 250, 221]);
    expect(cap.stored.length).toBe(before + 1);
    await allGone();
  });

  it('implicit TLS 1.2 (a close_notify there, too, leaves our direction open)', async () => {
    const before = cap.stored.length;
    const secure = tlsConnect({ port: implicitPort(), host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    const c = new RawClient(secure);
    clients.track(c);
    await new Promise((r) => secure.once('secureConnect', r));
    expect(secure.getProtocol()).toBe('TLSv1.2');
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([220, 250, 250, 250, 354, 250, 221]);
    expect(cap.stored.length).toBe(before + 1);
  });

  it('implicit TLS, after the greeting', async () => {
    const before = cap.stored.length;
    const c = await client(implicitPort(), { tls: true });
    expect(await c.waitFor(/^220 /)).toBe(true);
    c.socket.end(TRANSACTION);
    expect(await c.waitClosed(3_000)).toBe(true);
    expectWholeDialogue(c);
    expect(cap.stored.length).toBe(before + 1);
  });
});

describe('a FIN that cuts the dialogue', () => {
  for (const kind of ['plain', 'starttls', 'implicit'] as const) {
    it(`${kind}: FIN in the middle of DATA (no final dot): nothing queued, no spool file, closed at once`, async () => {
      const before = cap.stored.length;
      const n = disconnects.length;
      const c = kind === 'plain' ? await client(plainPort()) : kind === 'starttls' ? await startTls(plainPort()) : await client(implicitPort(), { tls: true });
      c.write('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n');
      expect(await c.waitFor(/354 /)).toBe(true);
      c.write(`Subject: cut\r\n\r\n${randomBytes(100_000).toString('base64')}\r\n`);
      await until(() => spool().length > 0, 'spool file created');
      const started = Date.now();
      c.socket.end('last line without the final dot\r\n');
      expect(await c.waitClosed(3_000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
      await until(() => disconnects.length > n, 'disconnect hook');
      await until(() => spool().length === 0, 'spool file removed');
      await sleep(QUEUE_MS + 50);
      expect(cap.stored.length).toBe(before);
      expect(c.text).not.toMatch(/queued as/);
      await allGone();
    });
  }

  it('a FIN with nothing pending closes at once, not after idleTimeout (10 s here)', async () => {
    for (const kind of ['plain', 'starttls', 'implicit'] as const) {
      const c = kind === 'plain' ? await client(plainPort()) : kind === 'starttls' ? await startTls(plainPort()) : await client(implicitPort(), { tls: true });
      if (kind !== 'starttls') expect(await c.waitFor(/^220 /)).toBe(true);
      const started = Date.now();
      c.socket.end();
      expect(await c.waitClosed(2_000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    await allGone();
  });

  it('a FIN after half a command line: the fragment is dropped, the connection closed', async () => {
    const c = await client(plainPort());
    expect(await c.waitFor(/^220 /)).toBe(true);
    c.socket.end('EHLO c.test\r\nMAIL FROM:<a@x');
    expect(await c.waitClosed(2_000)).toBe(true);
    expect(replyCodes(c.text)).toEqual([220, 250]);
  });

  it('a FIN right after STARTTLS (no handshake can follow): closed at once, slot back', async () => {
    const c = await client(plainPort());
    c.socket.end('EHLO c.test\r\nSTARTTLS\r\n');
    expect(await c.waitClosed(2_000)).toBe(true);
    await allGone();
  });

  it('implicit TLS: a FIN before the handshake finishes frees the slot at once (not after the handshake timeout)', async () => {
    const raw = await client(implicitPort());
    const secure = tlsConnect({ socket: raw.socket, rejectUnauthorized: false });
    secure.on('error', () => undefined);
    // The ClientHello leaves, then the TCP FIN: the server can never get the client's Finished.
    raw.socket.end();
    expect(await raw.waitClosed(2_000)).toBe(true);
    secure.destroy();
    await allGone();
  });
});

describe('half-open sockets do not hold slots', () => {
  it('a client that half-closes and never reads its replies is dropped by the idle timer (plus the close grace), its slot freed', async () => {
    const g = await startTestGateway({ limits: { idleTimeout: '300ms', maxConnectionsPerIp: 2 } });
    try {
      const c = await client(g.port);
      c.socket.pause();
      // Far more replies than the socket buffers hold; the client reads none.
      c.socket.end('HELP\r\n'.repeat(200_000));
      await until(() => g.gateway.connections === 0, 'the session to end', 10_000);
      const counts = (g.gateway as unknown as { table: { counts: Counts } }).table.counts;
      expect(counts).toEqual({ open: 0, clients: 0 });
      c.destroy();
    } finally {
      await g.close();
    }
  }, 20_000);
});

describe('churn', () => {
  it('200 rounds of half-closes, RSTs and TLS half-closes: connections, slots and fds come back to zero', async () => {
    await allGone();
    const before = fdCount();
    const storedBefore = cap.stored.length;
    let wholeDialogues = 0;
    const round = async (i: number): Promise<void> => {
      switch (i % 10) {
        case 0: {
          const c = await RawClient.connect(plainPort());
          c.socket.end(TRANSACTION);
          wholeDialogues++;
          await c.waitClosed(5_000);
          expect(replyCodes(c.text).at(-1)).toBe(221);
          return c.destroy();
        }
        case 1: {
          const c = await RawClient.connect(plainPort());
          c.write('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: x\r\n\r\npart');
          await sleep(i % 7);
          return c.reset();
        }
        case 2: {
          const c = await RawClient.connect(plainPort());
          c.socket.end('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: x\r\n\r\ncut');
          await c.waitClosed(5_000);
          return c.destroy();
        }
        case 3: {
          const c = await RawClient.connect(plainPort());
          c.socket.end();
          await c.waitClosed(5_000);
          return c.destroy();
        }
        case 4: {
          const c = await startTls(plainPort());
          c.socket.end(TRANSACTION);
          wholeDialogues++;
          await c.waitClosed(5_000);
          expect(replyCodes(c.text).at(-1)).toBe(221);
          return c.destroy();
        }
        case 5: {
          const c = await startTls(plainPort());
          c.write('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\n');
          await sleep(i % 5);
          // RST on the TCP socket under the TLS one.
          tcpOf.get(c)!.resetAndDestroy();
          return c.destroy();
        }
        case 6: {
          const c = await RawClient.connect(implicitPort(), { tls: true });
          c.socket.end(TRANSACTION);
          wholeDialogues++;
          await c.waitClosed(5_000);
          expect(replyCodes(c.text).at(-1)).toBe(221);
          return c.destroy();
        }
        case 7: {
          const c = await RawClient.connect(implicitPort(), { tls: true });
          c.socket.end('EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: x\r\n\r\ncut');
          await c.waitClosed(5_000);
          return c.destroy();
        }
        case 8: {
          // FIN during the implicit-TLS handshake.
          const raw = await RawClient.connect(implicitPort());
          const secure = tlsConnect({ socket: raw.socket, rejectUnauthorized: false });
          secure.on('error', () => undefined);
          raw.socket.end();
          await raw.waitClosed(5_000);
          secure.destroy();
          return;
        }
        default: {
          // STARTTLS, then FIN instead of a ClientHello.
          const c = await RawClient.connect(plainPort());
          c.socket.end('EHLO c.test\r\nSTARTTLS\r\n');
          await c.waitClosed(5_000);
          return c.destroy();
        }
      }
    };
    // Ten at a time (within maxConnectionsPerIp).
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => round(batch * 10 + k)));
    }
    await allGone();
    await until(() => cap.stored.length === storedBefore + wholeDialogues, 'every whole dialogue queued once');
    await sleep(QUEUE_MS + 50);
    expect(cap.stored.length).toBe(storedBefore + wholeDialogues);
    await until(() => spool().length === 0, 'no spool file left');
    await until(() => fdCount() <= before + 2, `fds back to ${before} (now ${fdCount()})`, 5_000);
    // Every per-IP slot is free again: maxConnectionsPerIp sessions at once are all greeted.
    const held = await Promise.all(Array.from({ length: 20 }, () => client(plainPort())));
    expect((await Promise.all(held.map((c) => c.waitFor(/^220 /)))).every(Boolean)).toBe(true);
  }, 60_000);
});
