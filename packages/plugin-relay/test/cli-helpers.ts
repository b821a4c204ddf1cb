/**
 * The real `mailgate` CLI for the queue tests: a config directory inside the repo (so
 * that `@mailgate/*` resolve from it), `mailgate serve` as a child under a chosen umask,
 * and one-shot `mailgate queue …` runs with their stdin, stdout, stderr and exit code.
 * Needs the built packages (`built`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { QueueEntry } from '../src/store.js';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const BIN = join(ROOT, 'packages/core/bin/mailgate.js');
export const built = existsSync(join(ROOT, 'packages/core/dist/cli.js')) && existsSync(join(ROOT, 'packages/plugin-relay/dist/index.js'));

/** A queued message to bob@dest.test, retried in an hour: what a test puts into a queue by hand. */
export function queuedEntry(id: string, fields: Partial<QueueEntry> = {}, recipient: Partial<QueueEntry['recipients'][number]> = {}): QueueEntry {
  const now = Date.now();
  return {
    version: 1,
    id,
    sender: 'alice@sender.test',
    created: now,
    nextAttempt: now + 3_600_000,
    attempts: 1,
    size: 30,
    bodyType: '7BIT',
    smtputf8: false,
    kind: 'message',
    recipients: [{ address: 'bob@dest.test', domain: 'dest.test', status: 'pending', attempts: 1, ...recipient }],
    ...fields,
  };
}

/** A directory for one test's config and queue, with a plugin that lets every recipient be relayed. */
export async function cliWorkdir(cleanup: Array<() => Promise<unknown>>): Promise<string> {
  const dir = await mkdtemp(join(import.meta.dirname, 'tmp-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'relay-allow.js'),
    `import { definePlugin } from '@mailgate/core';\nexport default definePlugin({ name: 'relay-allow', setup({ tap }) { tap('rcpt', (_s, _t, r) => { r.data.relayAllowed = true; }); } });\n`,
  );
  return dir;
}

/** gateway.yaml in `dir`: listens on `port`, relays through a smarthost on `smarthostPort`, retries in an hour. */
export async function cliConfig(dir: string, port: number, smarthostPort: number, queueDir = './queue'): Promise<string> {
  const file = join(dir, 'gateway.yaml');
  await writeFile(
    file,
    `hostname: relay.test
listen:
  - { host: 127.0.0.1, port: ${port} }
spool: { dir: ./spool }
log: { level: info, format: json }
shutdownTimeout: 1s
plugins:
  - use: ./relay-allow.js
  - use: "@mailgate/plugin-relay"
    with:
      queueDir: ${queueDir}
      smarthost: { host: "127.0.0.1:${smarthostPort}" }
      retry: { schedule: [1h] }
      controlPoll: 100ms
`,
  );
  return file;
}

export interface ServingGateway {
  child: ChildProcess;
  /** Its log so far (JSON lines on stdout, errors on stderr). */
  output(): string;
}

/** `mailgate serve -c config` under `umask` (a shell sets it, then execs node). */
export function serveWithUmask(config: string, umask: string, cleanup: Array<() => Promise<unknown>>): ServingGateway {
  const child = spawn('/bin/sh', ['-c', `umask ${umask} && exec "$@"`, 'sh', process.execPath, BIN, 'serve', '-c', config], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  return { child, output: () => output };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  /** stdout as the bytes written (for output that is not UTF-8). */
  stdoutBytes: Buffer;
  stderr: string;
}

/** `mailgate ARGS` to completion, with `input` on its stdin. */
export function mailgate(args: string[], input = ''): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      done({ code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr });
    });
    child.stdin.end(input);
  });
}
