import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, until, type IntegrationGateway } from './helpers.js';

/** Connections that open TCP but never start TLS still count against the limits. */
describe('implicit TLS listener limits', () => {
  let gw: IntegrationGateway | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await gw?.close();
    gw = undefined;
  });

  it('stalled handshakes take connection slots; past maxConnections the socket is closed at once', async () => {
    gw = await startGateway({ withTls: true, listen: [{ host: '127.0.0.1', port: 0, tls: 'implicit' }], limits: { maxConnections: 2 } });
    const port = gw.portOf(0);
    const open = () =>
      new Promise<Socket>((resolve) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
        sockets.push(s);
      });
    const a = await open();
    const b = await open();
    const c = await open();
    let closed = false;
    c.on('close', () => (closed = true));
    await until(() => closed, 'the third connection to be closed');
    expect(a.destroyed || b.destroyed).toBe(false);

    // Freeing a slot lets a real TLS client in.
    a.destroy();
    b.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const greeting = await new Promise<string>((resolve, reject) => {
      const t = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
      t.once('data', (d) => {
        resolve(d.toString());
        t.destroy();
      });
      t.once('error', reject);
    });
    expect(greeting).toMatch(/^220 /);
  });
});
