/**
 * Shared helpers for the hostile (adversarial) test suite: raw byte-exact sockets,
 * fd / RSS / spool accounting, a capturing store, and buggy plugins, also as plugin
 * files for the real `mailgate` CLI (run with startMailgate). Not a test file itself.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { accept, definePlugin, type PluginContext, type PluginDefinition } from '@mailgate/core';

export { freePort } from '@mailgate/core/testing';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `predicate` holds; throws `what` after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(everyMs);
  }
}

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** VmRSS of a process in bytes (/proc/PID/status). */
export function rssOf(pid: number | 'self' = 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const temps: string[] = [];
/** A private temporary directory, removed by `cleanupTemps()`. */
export function tempDir(prefix = 'mg-hostile-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
export function cleanupTemps(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * A raw client: every byte it receives is kept, nothing is parsed unless asked.
 * `waitFor` resolves when the received text matches; `closed` when the peer is gone.
 */
/**
 * Raw clients of one test file, all destroyed after each test (call at the top level
 * of the file: it registers the afterEach).
 */
export function trackedClients(): {
  connect: (port: number, options?: Parameters<typeof RawClient.connect>[1]) => Promise<RawClient>;
  track: (client: RawClient) => RawClient;
  destroyAll: () => void;
} {
  const open: RawClient[] = [];
  const destroyAll = (): void => {
    for (const c of open.splice(0)) c.destroy();
  };
  afterEach(destroyAll);
  const track = (client: RawClient): RawClient => (open.push(client), client);
  return { connect: async (port, options) => track(await RawClient.connect(port, options)), track, destroyAll };
}

export class RawClient {
  received = Buffer.alloc(0);
  ended = false;
  readonly closed: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(readonly socket: Socket | TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((r) =>
      socket.once('close', () => {
        this.ended = true;
        this.wake();
        r();
      }),
    );
  }

  static connect(port: number, options: { host?: string; localAddress?: string; tls?: boolean } = {}): Promise<RawClient> {
    const host = options.host ?? '127.0.0.1';
    const local = options.localAddress ? { localAddress: options.localAddress } : {};
    const socket = options.tls
      ? tlsConnect({ port, host, rejectUnauthorized: false, ...local } as never)
      : netConnect({ port, host, ...local });
    return new Promise((res, rej) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => res(new RawClient(socket)));
      socket.once('error', rej);
    });
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Wait until the received text matches (or the connection closes / time runs out). */
  async waitFor(pattern: RegExp | ((text: string) => boolean), timeoutMs = 3_000): Promise<boolean> {
    const test = typeof pattern === 'function' ? pattern : (t: string) => pattern.test(t);
    const deadline = Date.now() + timeoutMs;
    while (!test(this.text)) {
      if (this.ended || Date.now() > deadline) return test(this.text);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  /** Resolves true if the peer closed within `timeoutMs`. */
  async waitClosed(timeoutMs = 3_000): Promise<boolean> {
    if (this.ended) return true;
    return Promise.race([this.closed.then(() => true), sleep(timeoutMs).then(() => false)]);
  }

  /** Send a RST (abortive close). */
  reset(): void {
    (this.socket as Socket).resetAndDestroy?.() ?? this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Reply lines (`ddd text`) in `text`. */
export function replyCodes(text: string): number[] {
  return text
    .split('\r\n')
    .filter((l) => /^\d{3} /.test(l))
    .map((l) => Number(l.slice(0, 3)));
}

/** A plugin from one setup function. */
export function plugin(name: string, setup: (ctx: PluginContext<unknown>) => void | Promise<void>): PluginDefinition {
  return definePlugin({ name, setup: setup as PluginDefinition['setup'] });
}

export interface Stored {
  from: string;
  rcpts: string[];
  bytes: Buffer;
  helo: string | undefined;
}

/** A storage plugin that claims every recipient and keeps a copy of each queued message. */
export function capture(name = 'capture'): { plugin: PluginDefinition; stored: Stored[] } {
  const stored: Stored[] = [];
  const def = plugin(name, ({ tap }) => {
    tap('claim', () => accept());
    tap('queue', async (session, tx) => {
      const parts: Buffer[] = [];
      for await (const c of tx.message!.stream()) parts.push(c as Buffer);
      stored.push({ from: tx.senderText, rcpts: tx.recipients.map((r) => r.text), bytes: Buffer.concat(parts), helo: session.heloName });
      return accept();
    });
  });
  return { plugin: def, stored };
}

/** The Received: header (unfolded lines kept) at the top of a stored message. */
export function receivedHeader(message: Buffer): string {
  const text = message.toString('utf8');
  let end = 0;
  for (;;) {
    const crlf = text.indexOf('\r\n', end);
    if (crlf < 0) return text;
    end = crlf + 2;
    if (text[end] !== ' ' && text[end] !== '\t') return text.slice(0, end);
  }
}

/** A plugin file (ESM, no imports) for the CLI: marks itself with the same registry symbols definePlugin / verdict helpers use. */
export function pluginFileSource(name: string, setupBody: string): string {
  return `
const VERDICT = Symbol.for('mailgate.verdict');
const verdict = (kind, message) => { const v = { kind, ...(message === undefined ? {} : { message }) }; Object.defineProperty(v, VERDICT, { value: true }); return Object.freeze(v); };
const plugin = { name: ${JSON.stringify(name)}, setup(ctx) { const { tap } = ctx; ${setupBody} } };
Object.defineProperty(plugin, Symbol.for('mailgate.plugin'), { value: true });
export default Object.freeze(plugin);
`;
}
