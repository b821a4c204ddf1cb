/**
 * Crash safety: the real CLI delivers under load from concurrent SMTP clients and is
 * killed with SIGKILL at random moments, then restarted, several times. Afterwards:
 * every message that got a 250 is in new/ exactly once per recipient and complete;
 * a message that got no 250 is there at most once and complete; nothing in new/ is
 * partial (every file is checked byte for byte, with Python's mailbox.Maildir).
 *
 * SIGKILL ends the process, not the kernel: this proves the ordering (tmp → complete
 * file → new/) and the rollback, not the fsyncs (that would need a power cut).
 *
 * Needs the built CLI and plugin (`npm run build`); a stale plugin dist/ is rebuilt here.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpTestClient } from '@mailgate/core/testing';
import { dataBlock, readMaildir, splitDelivered, tempDir } from './helpers.js';

const PACKAGE = resolve(fileURLToPath(import.meta.url), '../..');
const REPO = resolve(PACKAGE, '../..');
const CLI = join(REPO, 'packages/core/bin/mailgate.js');
const ROUNDS = 5;
const CLIENTS = 6;
const RECIPIENTS = ['alice', 'bob'];

/** Small deterministic PRNG (mulberry32), so a run's kill times and sizes are reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The message with this id: its size is derived from the id, every 8th one is large (spooled to a file by the core). */
function messageFor(id: string, n: number): Buffer {
  const lines = n % 8 === 7 ? 3000 : 5 + (n % 13) * 7;
  const body: string[] = [];
  for (let i = 0; i < lines; i++) body.push(`${id} line ${i} ${'abcdefghij'.repeat(5)}`);
  return Buffer.from(`From: <s@client.test>\r\nSubject: crash test ${id}\r\nX-Test-Id: ${id}\r\n\r\n${body.join('\r\n')}\r\n`);
}

function ensureBuilt(): void {
  const cli = join(REPO, 'packages/core/dist/cli.js');
  if (!existsSync(cli)) execFileSync('npx', ['tsc', '-p', join(REPO, 'packages/core/tsconfig.build.json')], { cwd: REPO, stdio: 'inherit' });
  const dist = join(PACKAGE, 'dist/index.js');
  const srcDir = join(PACKAGE, 'src');
  const newest = Math.max(...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs));
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest) {
    execFileSync('npx', ['tsc', '-p', join(PACKAGE, 'tsconfig.build.json')], { cwd: REPO, stdio: 'inherit' });
  }
}

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
}

async function startServer(config: string): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '-c', config, '--listen', '127.0.0.1:0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let output = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /"msg":"listening".*?"port":(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}): ${output}`));
    });
  });
  return { child, port, exited };
}

interface Sent {
  id: string;
  n: number;
  rcpts: string[];
}

/** One client: one connection, transactions back to back until the connection dies. */
async function client(port: number, prefix: string, sent: Sent[], acked: Set<string>, stop: { now: boolean }): Promise<void> {
  let c: SmtpTestClient;
  try {
    c = await SmtpTestClient.connect(port);
  } catch {
    return;
  }
  try {
    if ((await c.read()).code !== 220 || (await c.command('EHLO load.test')).code !== 250) return;
    for (let n = 0; !stop.now; n++) {
      const id = `${prefix}-${n}`;
      const rcpts = n % 3 === 0 ? RECIPIENTS : [RECIPIENTS[n % 2]!];
      if ((await c.command('MAIL FROM:<s@client.test>')).code !== 250) return;
      for (const r of rcpts) if ((await c.command(`RCPT TO:<${r}@crash.test>`)).code !== 250) return;
      if ((await c.command('DATA')).code !== 354) return;
      sent.push({ id, n, rcpts });
      c.write(dataBlock(messageFor(id, n)));
      const reply = await c.read(10_000);
      if (reply.code === 250) acked.add(id);
      else return;
    }
  } catch {
    // the server was killed: this transaction has no 250, the client would retry it
  } finally {
    c.close();
  }
}

describe('crash safety (kill -9 under load)', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  let server: Server | undefined;

  beforeAll(async () => {
    ensureBuilt();
    t = await tempDir('maildir-crash-');
  }, 120_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await t?.cleanup();
  });

  it(`every 250 is in new/ exactly once and complete after ${ROUNDS} SIGKILLs`, async () => {
    const root = join(t.dir, 'mail');
    const config = join(t.dir, 'gateway.yaml');
    await writeFile(
      config,
      [
        'hostname: crash.test',
        'listen: [{ host: 127.0.0.1, port: 2599 }]',
        `spool: { dir: ${JSON.stringify(join(t.dir, 'spool'))}, memoryThreshold: 64KB }`,
        'log: { level: info, format: json }',
        'plugins:',
        '  - use: "@mailgate/plugin-maildir"',
        `    with: { root: ${JSON.stringify(root)}, domains: [crash.test] }`,
        '',
      ].join('\n'),
    );
    const random = prng(0x6d61696c);
    const sent: Sent[] = [];
    const acked = new Set<string>();
    const perRound: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      server = await startServer(config);
      const stop = { now: false };
      const before = acked.size;
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(server!.port, `r${round}c${i}`, sent, acked, stop));
      // wait for the first acknowledgements, then kill at a random moment
      const t0 = Date.now();
      while (acked.size - before < 5 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50 + Math.floor(random() * 400)));
      server.child.kill('SIGKILL');
      await server.exited;
      stop.now = true;
      await Promise.all(clients);
      perRound.push(acked.size - before);
    }
    server = undefined;

    // read everything back with an independent reader
    const count = new Map<string, number>();
    let files = 0;
    for (const user of RECIPIENTS) {
      for (const m of await readMaildir(join(root, 'crash.test', user))) {
        files++;
        expect(m.subdir).toBe('new');
        const id = /X-Test-Id: (\S+)\r\n/.exec(m.bytes.toString('latin1'))?.[1];
        expect(id, `file without a test id: ${m.name}`).toBeDefined();
        const s = sent.find((x) => x.id === id);
        expect(s, `unknown id ${id}`).toBeDefined();
        // complete, byte for byte: our headers, one Received:, then exactly what was sent
        const { added } = splitDelivered(m.bytes, messageFor(s!.id, s!.n));
        expect(added).toBe(`Return-Path: <s@client.test>\r\nDelivered-To: ${user}@crash.test\r\n`);
        expect(Number(/,S=(\d+)$/.exec(m.name)?.[1])).toBe(m.bytes.length);
        const key = `${id} ${user}`;
        count.set(key, (count.get(key) ?? 0) + 1);
      }
    }
    const unacked = sent.filter((s) => !acked.has(s.id));
    for (const s of sent) {
      for (const user of s.rcpts) {
        const n = count.get(`${s.id} ${user}`) ?? 0;
        if (acked.has(s.id)) expect(n, `${s.id} to ${user} (acknowledged)`).toBe(1);
        else expect(n, `${s.id} to ${user} (not acknowledged)`).toBeLessThanOrEqual(1);
      }
    }
    // no message of a recipient it was not sent to
    for (const key of count.keys()) {
      const [id, user] = key.split(' ');
      expect(sent.find((s) => s.id === id)!.rcpts).toContain(user);
    }
    expect(perRound.every((n) => n >= 5)).toBe(true);
    expect(unacked.length).toBeGreaterThan(0); // kills did land in the middle of transactions
    console.log(`crash test: ${ROUNDS} kills, ${sent.length} messages sent, ${acked.size} acknowledged (${perRound.join('/')} per round), ${unacked.length} cut off, ${files} files in new/`);
  }, 90_000);
});
