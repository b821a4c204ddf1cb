/**
 * Real programs that half-close: OpenBSD netcat's `nc -N` (shutdown(SHUT_WR) at the end
 * of its input) and Python's raw socket with shutdown(SHUT_WR). They send a whole
 * pipelined transaction, close their sending side, and must still read every reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '@mailgate/core';
import { haveTool, PYTHON, run, startGateway, type IntegrationGateway } from './helpers.js';

const TRANSACTION = 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: half-close\r\n\r\nhi\r\n.\r\nQUIT\r\n';

const PY_HALF_CLOSE = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
`;

/** An `nc` that knows -N (OpenBSD netcat); the traditional one and ncat do not. */
async function netcatWithN(): Promise<string | undefined> {
  for (const path of ['/usr/bin/nc', '/bin/nc', '/usr/bin/nc.openbsd']) {
    if (!haveTool(path)) continue;
    const help = await run(path, ['-h'], { timeoutMs: 5_000 });
    if (/^\s*-N\s/m.test(help.stdout + help.stderr)) return path;
  }
  return undefined;
}

describe('real clients that half-close', () => {
  let gw: IntegrationGateway;
  beforeAll(async () => {
    // A store that takes a moment: the client's FIN is in long before the 250 can be
    // written, as with a real disk or relay queue.
    gw = await startGateway({}, (g) =>
      g.use(
        definePlugin({
          name: 'slow-store',
          setup({ tap }) {
            tap('queue', () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)));
          },
        }),
      ),
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('nc -N: gets 250 and 221, the message is queued once', async (ctx) => {
    const nc = await netcatWithN();
    if (!nc) ctx.skip(); // Debian: apt-get install netcat-openbsd
    const before = gw.capture.messages.length;
    const result = await run(nc!, ['-N', '127.0.0.1', String(gw.port)], { input: TRANSACTION, timeoutMs: 10_000 });
    expect(result.timedOut).toBe(false);
    expect(result.stdout).toMatch(/^220 /);
    expect(result.stdout).toMatch(/\r\n250 2\.0\.0 OK: queued as \S+\r\n221 2\.0\.0 /);
    expect(gw.capture.messages.length).toBe(before + 1);
    expect(gw.capture.messages.at(-1)!.helo).toBe('client.test');
  });

  it("Python's socket with shutdown(SHUT_WR): gets 250 and 221, the message is queued once", async (ctx) => {
    if (!haveTool(PYTHON)) ctx.skip();
    const before = gw.capture.messages.length;
    const result = await run(PYTHON, ['-c', PY_HALF_CLOSE, String(gw.port)], { input: TRANSACTION, timeoutMs: 15_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    expect(gw.capture.messages.length).toBe(before + 1);
  });
});
