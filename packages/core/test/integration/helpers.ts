/**
 * Helpers for the socket-level integration tests: running real client programs
 * (swaks, Python's smtplib, Postfix's smtp-source, the mailgate CLI) with a
 * timeout, picking free ports, and a storage plugin that captures what the
 * gateway delivered so it can be compared byte for byte with what was sent.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { accept, definePlugin, reject, type Gateway, type GatewayConfigInput, type Session } from '@mailgate/core';
import { generateTestCertificate, startTestGateway, type TestCertificate, type TestGateway } from '@mailgate/core/testing';

export { freePort } from '@mailgate/core/testing';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '../../../..');
export const CORE_DIR = resolve(HERE, '../..');

/** Debian's python (has smtplib with SMTPUTF8 and SMTP_SSL); not the pyenv one on PATH. */
export const PYTHON = '/usr/bin/python3';
export const SWAKS = '/usr/bin/swaks';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export function haveTool(path: string): boolean {
  return existsSync(path);
}

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Kill (SIGKILL) after this many ms; default 20 s. */
  timeoutMs?: number;
  /** Bytes written to the child's stdin (stdin is closed after). */
  input?: string | Buffer;
}

/** Run a program (no shell), capturing stdout, stderr and its exit status, with a hard timeout. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolvePromise, rejectPromise) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 20_000);
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectPromise(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        ms: performance.now() - started,
      });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}

/** Whether this host can bind ::1 (IPv6 loopback may be disabled in a container). */
export async function haveIpv6Loopback(): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen({ host: '::1', port: 0 }, () => res());
    });
    await new Promise<void>((res) => server.close(() => res()));
    return true;
  } catch {
    return false;
  }
}

/** What the capturing storage plugin saw for one message at `queue`. */
export interface Captured {
  sessionId: string;
  from: string;
  rcpts: string[];
  claimedBy: Array<string | undefined>;
  helo: string | undefined;
  esmtp: boolean;
  user: string | undefined;
  tls: Session['tls'];
  smtputf8: boolean;
  bodyType: string;
  /** The whole message as stored: prepended headers (Received:) + body. */
  full: Buffer;
  /** The body as the client sent it (after dot-unstuffing), without added headers. */
  body: Buffer;
  /** Headers the gateway prepended, top first. */
  added: readonly string[];
  /** Spool file path if the body spilled to disk, and whether it existed at `queue` time. */
  spoolPath: string | undefined;
  spoolFileExisted: boolean;
  bodySize: number;
}

export interface Capture {
  readonly plugin: ReturnType<typeof definePlugin>;
  readonly messages: Captured[];
  /** Resolves once `n` messages have been captured (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Captured[]>;
}

/**
 * A test storage plugin: claims every recipient (optionally only some domains)
 * and at `queue` reads the whole message back, as a real storage plugin would.
 * `keepBody: false` only measures (for the memory and concurrency tests).
 */
export function captureStorage(options: { domains?: string[]; keepBody?: boolean; name?: string } = {}): Capture {
  const messages: Captured[] = [];
  const waiters: Array<() => void> = [];
  const keep = options.keepBody ?? true;
  const plugin = definePlugin({
    name: options.name ?? 'test-capture',
    setup({ tap, gateway }) {
      for (const d of options.domains ?? []) gateway.addLocalDomain(d);
      tap('claim', (_s, _tx, rcpt) =>
        !options.domains || options.domains.includes(rcpt.address.domain.toLowerCase()) ? accept() : undefined,
      );
      tap('queue', async (session, tx) => {
        const message = tx.message!;
        const spoolPath = message.spoolPath;
        const spoolFileExisted = spoolPath !== undefined && existsSync(spoolPath);
        let full: Buffer = Buffer.alloc(0);
        let body: Buffer = Buffer.alloc(0);
        if (keep) {
          full = await message.toBuffer();
          const parts: Buffer[] = [];
          for await (const chunk of message.stream({ includeAdded: false })) parts.push(chunk as Buffer);
          body = Buffer.concat(parts);
        } else {
          // Still read it through, like a real storage plugin would, without keeping it.
          for await (const _chunk of message.stream()) void _chunk;
        }
        messages.push({
          sessionId: session.id,
          from: tx.senderText,
          rcpts: tx.recipients.map((r) => r.text),
          claimedBy: tx.recipients.map((r) => r.claimedBy),
          helo: session.heloName,
          esmtp: session.esmtp,
          user: session.user,
          tls: session.tls,
          smtputf8: tx.smtputf8,
          bodyType: tx.bodyType,
          full,
          body,
          added: [...message.addedHeaders],
          spoolPath,
          spoolFileExisted,
          bodySize: message.bodySize,
        });
        for (const w of waiters.splice(0)) w();
        return accept();
      });
    },
  });
  return {
    plugin,
    messages,
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${n} captured messages, got ${messages.length}`);
        await new Promise<void>((res) => {
          const t = setTimeout(res, left);
          waiters.push(() => {
            clearTimeout(t);
            res();
          });
        });
      }
      return messages;
    },
  };
}

/** An `auth` tap accepting exactly these user → password pairs; anything else gets no verdict (→ 535). */
export function authPlugin(users: Record<string, string>, seen: Array<{ mechanism: string; username: string }> = []) {
  return definePlugin({
    name: 'test-auth',
    setup({ tap }) {
      tap('auth', (_session, creds) => {
        seen.push({ mechanism: creds.mechanism, username: creds.username });
        return Object.hasOwn(users, creds.username) && users[creds.username] === creds.password ? accept() : undefined;
      });
    },
  });
}

/** A plugin that refuses MAIL from one sender (to check negative paths through real clients). */
export function refuseSender(sender: string) {
  return definePlugin({
    name: 'test-refuse-sender',
    setup({ tap }) {
      tap('mail', (_s, tx) => (tx.senderText === sender ? reject('Sender refused by test') : undefined));
    },
  });
}

let certificate: Promise<TestCertificate> | undefined;
/** One self-signed certificate per test file (RSA key generation is slow). */
export function testCertificate(): Promise<TestCertificate> {
  certificate ??= generateTestCertificate('localhost');
  return certificate;
}
// Registered on the importing test file: remove the certificate's temp dir after its tests.
afterAll(async () => {
  const made = certificate;
  certificate = undefined;
  if (made) await rm(dirname((await made).keyFile), { recursive: true, force: true });
});

export interface IntegrationGateway extends TestGateway {
  capture: Capture;
  /** Port of the n-th listener (in the order of `config.listen`). */
  portOf(index: number): number;
}

/**
 * A gateway on loopback with a capturing storage plugin; `tls: true` adds the test
 * certificate (so plain listeners offer STARTTLS). Extra plugins go in `setup`.
 */
export async function startGateway(
  config: GatewayConfigInput & { withTls?: boolean } = {},
  setup?: (gateway: Gateway, dir: string) => void | Promise<void>,
  captureOptions: Parameters<typeof captureStorage>[0] = {},
): Promise<IntegrationGateway> {
  const { withTls, ...rest } = config;
  const cert = withTls ? await testCertificate() : undefined;
  const capture = captureStorage(captureOptions);
  const started = await startTestGateway(
    { ...(cert ? { tls: { key: cert.keyFile, cert: cert.certFile } } : {}), ...rest },
    async (gateway, dir) => {
      await setup?.(gateway, dir);
      await gateway.use(capture.plugin);
    },
  );
  return {
    ...started,
    capture,
    portOf(index: number) {
      const address = started.gateway.addresses[index];
      if (!address) throw new Error(`no listener #${index}`);
      return address.port;
    },
  };
}

/** Remove the Received: header the gateway prepends (first header, with its folded lines). */
export function stripFirstReceived(message: Buffer): Buffer {
  if (!message.subarray(0, 10).equals(Buffer.from('Received: '))) throw new Error('message does not start with Received:');
  let offset = message.indexOf('\r\n') + 2;
  while (message[offset] === 0x20 || message[offset] === 0x09) offset = message.indexOf('\r\n', offset) + 2;
  return message.subarray(offset);
}

/** Files in the spool directory of a test gateway (empty list if it does not exist). */
export async function spoolFiles(gw: TestGateway): Promise<string[]> {
  try {
    return await readdir(join(gw.dir, 'spool'));
  } catch {
    return [];
  }
}

/** Wait until `predicate` holds, checking every `intervalMs`; throws with `what` after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

/** A deterministic pseudo-random body of `lines` CRLF lines (some starting with "."), ASCII only. */
export function textBody(lines: number, seed = 1): string {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = next();
    const len = 20 + (n % 60);
    let line = '';
    for (let j = 0; j < len; j++) line += String.fromCharCode(0x21 + (next() % 94));
    if (n % 7 === 0) line = `.${line}`;
    if (n % 11 === 0) line = '';
    out.push(line);
  }
  return `${out.join('\r\n')}\r\n`;
}
