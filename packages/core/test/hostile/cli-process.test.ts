/**
 * The real `mailgate` process (bin/mailgate.js, the built CLI) under hostile input:
 * does it stay up, and does its memory (VmRSS from /proc/PID/status) stay bounded?
 * Each test starts its own child on a fresh loopback port and kills it afterwards.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startMailgate, type MailgateProcess } from '@mailgate/core/testing';
import { cleanupTemps, freePort, pluginFileSource, RawClient, rssOf, sleep, tempDir, until } from './helpers.js';

const children: MailgateProcess[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(children.splice(0).map((c) => c.kill()));
});
afterAll(() => cleanupTemps());

/** Write a config (and plugin files) into a fresh directory and start `mailgate serve` on it. */
async function serve(extraYaml: string, files: Record<string, string> = {}): Promise<{ cli: MailgateProcess; port: number }> {
  const dir = tempDir();
  const port = await freePort();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `hostname: mx.test\nlisten: [{ host: 127.0.0.1, port: ${port} }]\nspool: { dir: ./spool }\nlog: { level: warn }\n${extraYaml}`,
  );
  // log level warn: no 'listening' line to wait for, so poll the port
  const cli = await startMailgate(['serve', '-c', join(dir, 'gateway.yaml')], { cwd: dir, waitFor: false });
  children.push(cli);
  await until(
    async () => {
      if (cli.gone) throw new Error(`mailgate exited early: ${cli.output()}`);
      try {
        const probe = await RawClient.connect(port);
        probe.destroy();
        return true;
      } catch {
        return false;
      }
    },
    'mailgate listening',
    15_000,
    50,
  );
  return { cli, port };
}

async function greeted(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  expect(await c.waitFor(/^220 /)).toBe(true);
  return c;
}

describe('the mailgate process', () => {
  // BUG: hooks.ts wrapTap — for a promise tap, `settle(() => fail(...))` runs inside the `.then` callback; errorMessage(Object.create(null)) throws there, the rejection is unhandled and Node 20 terminates the process: ONE hostile/buggy plugin rejection drops every session of the gateway.
  it('stays up when a plugin\'s async tap rejects with a value that has no string form', async () => {
    const { cli, port } = await serve('plugins:\n  - use: ./evil.mjs\n', {
      'evil.mjs': pluginFileSource('evil', `tap('helo', async (s, info) => { if (info.name === 'kill.test') throw Object.create(null); });`),
    });
    const bystander = await greeted(port);
    const attacker = await greeted(port);
    attacker.write('EHLO kill.test\r\n');
    await Promise.race([cli.exited, sleep(1_000)]);
    expect(cli.gone).toBe(false);
    bystander.write('NOOP\r\n');
    expect(await bystander.waitFor(/250 2\.0\.0 OK/, 2_000)).toBe(true);
    expect(attacker.text).toMatch(/450 /);
  });

  it('memory stays bounded while a client pipelines ~10 MB of NOOP and never reads; other clients are still served', async () => {
    // (no junk-command limit: it would close the NOOP flood before TCP pushes back)
    const { cli, port } = await serve('limits: { maxConnectionsPerIp: 10, maxJunkCommands: 1000000000 }\n');
    await sleep(200);
    const baseline = rssOf(cli.child.pid!);
    const flooder = await greeted(port);
    flooder.socket.pause(); // never read a reply
    const chunk = Buffer.from('NOOP\r\n'.repeat(20_000));
    let written = 0;
    while (written < 10 * 1024 * 1024) {
      if (!flooder.socket.write(chunk)) {
        const drained = await Promise.race([new Promise<boolean>((r) => flooder.socket.once('drain', () => r(true))), sleep(400).then(() => false)]);
        if (!drained) break; // the server stopped reading: TCP pushes back on us
      }
      written += chunk.length;
    }
    expect(written).toBeLessThan(10 * 1024 * 1024);
    const other = await greeted(port);
    other.write('NOOP\r\n');
    expect(await other.waitFor(/250 2\.0\.0 OK/)).toBe(true);
    expect(rssOf(cli.child.pid!) - baseline).toBeLessThan(64 * 1024 * 1024);
    expect(cli.gone).toBe(false);
  });

  it('`mailgate check` with a plugin path outside the config directory exits 2 with the key path, not a stack trace', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), 'plugins:\n  - use: ../../../../../../../etc/passwd\n');
    const cli = await startMailgate(['check', '-c', join(dir, 'gateway.yaml')], { cwd: dir, waitFor: false });
    children.push(cli);
    const { code } = await cli.exited;
    expect(code).toBe(2);
    expect(cli.stderr()).toMatch(/gateway\.yaml:2:\d+: plugins\[0\]\.use: cannot load plugin/);
    expect(cli.stderr()).not.toMatch(/\n\s+at /); // no stack trace
  });
});
