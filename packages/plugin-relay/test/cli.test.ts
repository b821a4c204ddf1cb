/**
 * The real `mailgate` CLI (needs `npx turbo run build`): `kill -9` during delivery
 * loses nothing, and `mailgate queue` works on a running gateway's queue.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cliWorkdir } from './cli-helpers.js';
import { closedPort, DEST_ZONE, listening, message, sendMail, startReceiver, useRelayFixture, waitFor, type Receiver } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'packages/core/bin/mailgate.js');
const built = existsSync(join(ROOT, 'packages/core/dist/cli.js')) && existsSync(join(ROOT, 'packages/plugin-relay/dist/index.js'));
const run = promisify(execFile);

const fx = useRelayFixture(DEST_ZONE);
const { cleanup } = fx;

// Inside the repo, so that `@mailgate/core` and `@mailgate/plugin-relay` resolve from the config's directory.
const workdir = () => cliWorkdir(cleanup);

async function writeConfig(dir: string, port: number, mxPort: number, extra = ''): Promise<string> {
  const file = join(dir, 'gateway.yaml');
  await writeFile(
    file,
    `hostname: relay.test
listen:
  - { host: 127.0.0.1, port: ${port} }
spool: { dir: ./spool }
dns: { servers: ["${fx.dns.address}"] }
log: { level: warn }
shutdownTimeout: 1s
plugins:
  - use: ./relay-allow.js
  - use: "@mailgate/plugin-relay"
    with:
      queueDir: ./queue
      mxPort: { mx1.dest.test: ${mxPort} }
      # the test's MX host is on 127.0.0.1
      allowLoopbackMx: true
      concurrency: 4
      controlPoll: 100ms
${extra}`,
  );
  return file;
}

function serve(config: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'serve', '-c', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.on('exit', (code, signal) => {
    if (code && code !== 0) console.error(`mailgate exited ${code} ${signal}: ${stderr}`);
  });
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  return child;
}

const subjects = (r: Receiver) => r.messages.map((m) => /Subject: (\S+)/.exec(m.data)?.[1] ?? '?');

describe.skipIf(!built)('relay with the real CLI', () => {
  it('kill -9 during delivery: nothing lost, duplicates only for transactions in flight', async () => {
    const dir = await workdir();
    const dest = await startReceiver({ delayMs: 100 });
    cleanup.push(() => dest.close());
    const port = await closedPort();
    const config = await writeConfig(dir, port, dest.port, '      retry: { schedule: [200ms], jitter: 0 }\n');
    const first = serve(config);
    await listening(port);
    const total = 40;
    for (let i = 0; i < total; i++) await sendMail(port, 'alice@sender.test', [`u${i}@dest.test`], message(`k${i}`));
    await waitFor(() => dest.messages.length >= 5, 20_000, 'some deliveries');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const atKill = dest.messages.length;
    expect(atKill).toBeLessThan(total);
    const left = (await readdir(join(dir, 'queue', 'msg'))).filter((f) => f.endsWith('.json')).length;
    expect(left).toBeGreaterThan(0);

    serve(config);
    await waitFor(() => new Set(subjects(dest)).size === total, 30_000, 'every message delivered');
    await waitFor(async () => (await readdir(join(dir, 'queue', 'msg'))).length === 0, 10_000, 'empty queue');
    const duplicates = dest.messages.length - total;
    // At most the transactions in flight at the kill (concurrency 4) are sent twice.
    expect(duplicates).toBeLessThanOrEqual(4);
  });

  it('mailgate queue list / show / delete / flush on a running gateway', async () => {
    const dir = await workdir();
    const port = await closedPort();
    const destPort = await closedPort();
    const config = await writeConfig(dir, port, destPort, '      retry: { schedule: [1h] }\n');
    serve(config);
    await listening(port);
    for (let i = 0; i < 3; i++) await sendMail(port, 'alice@sender.test', [`q${i}@dest.test`], message(`q${i}`));
    const cli = (...args: string[]) => run(process.execPath, [BIN, 'queue', ...args, '-c', config], { cwd: ROOT });
    const ids = await waitFor(async () => {
      const { stdout } = await cli('list');
      const found = [...stdout.matchAll(/^([0-9A-Z]{10,})\s/gm)].map((m) => m[1]!);
      return found.length === 3 && stdout.includes('connect') ? { found, stdout } : undefined;
    }, 15_000, 'three deferred messages in the list');
    expect(ids.stdout).toMatch(/in 3 messages/);
    const shown = await cli('show', ids.found[0]!);
    expect(shown.stdout).toContain('"sender": "alice@sender.test"');
    expect(shown.stdout).toContain('Subject: q');
    const deleted = await cli('delete', ids.found[0]!);
    expect(deleted.stdout).toMatch(/delete .*: ok/);
    expect((await cli('list')).stdout).toMatch(/in 2 messages/);

    const dest = await startReceiver({ port: destPort });
    cleanup.push(() => dest.close());
    const flushed = await cli('flush');
    expect(flushed.stdout).toMatch(/flush: ok 2/);
    await waitFor(() => dest.messages.length === 2, 15_000, 'delivery after flush');
    await waitFor(async () => (await cli('list')).stdout.includes('Mail queue is empty'), 10_000, 'empty list');
  });
});
