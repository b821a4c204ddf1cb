/**
 * The spool on a full disk and after a crash. A body larger than `spool.memoryThreshold`
 * streams to a file; when that file cannot take every byte (ENOSPC), the message must be
 * refused with 451 and its file removed: it once got `250` with an empty file behind it,
 * and the relay sent on a message of headers only. Files left by a gateway that died in
 * the middle of DATA are removed at the next start. The full disk is a real one: a small
 * tmpfs (needs root, as in CI; skipped otherwise).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accept, createGateway, definePlugin, silentLogger } from '@mailgate/core';
import { SmtpTestClient } from '@mailgate/core/testing';

const root = process.getuid?.() === 0;
if (!root) console.warn('spool-failure: mounting a small tmpfs needs root; the full-disk cases are skipped');

/** Records what reached the queue stage, with the bytes a storage plugin would read. */
function recorder() {
  const queued: Buffer[] = [];
  const plugin = definePlugin({
    name: 'recorder',
    setup({ tap }) {
      tap('claim', () => accept());
      tap('queue', async (_s, tx) => {
        const chunks: Buffer[] = [];
        for await (const c of tx.message!.stream()) chunks.push(c as Buffer);
        queued.push(Buffer.concat(chunks));
      });
    },
  });
  return { plugin, queued };
}

async function sendBody(port: number, body: string): Promise<number> {
  const c = await SmtpTestClient.connect(port);
  try {
    await c.read();
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@client.test>');
    await c.command('RCPT TO:<b@example.test>');
    expect((await c.command('DATA')).code).toBe(354);
    c.write(`${body}.\r\n`);
    const code = (await c.read(20_000)).code;
    await c.command('QUIT');
    return code;
  } finally {
    c.close();
  }
}

const line = `${'B'.repeat(76)}\r\n`;
const BODY = `Subject: 200 KB\r\n\r\n${line.repeat(2_600)}`; // 202,817 bytes

describe.skipIf(!root)('a spool file system that fills up', () => {
  let mnt: string;
  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), 'mg-spool-full-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    if (r.status !== 0) throw new Error(`mount tmpfs: ${r.stderr.toString()}`);
  });
  afterAll(() => {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  // free space left before the message: none at all, and less than the message (the
  // error then comes from the last writes, when the file is ended)
  it.each([
    ['no space at all', 0],
    ['space for half the message', 100 * 1024],
  ])('%s: 451, nothing queued, no spool file left behind', async (_what, free) => {
    const spoolDir = join(mnt, 'spool');
    mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    rmSync(join(mnt, 'filler'), { force: true });
    // fill the 1 MiB file system up to `free` bytes (tmpfs counts whole pages)
    const filler = Buffer.alloc(1024 * 1024 - free - 4096 * 4);
    try {
      writeFileSync(join(mnt, 'filler'), filler);
    } catch {
      /* ENOSPC: full, as wanted */
    }
    const { plugin, queued } = recorder();
    const gateway = createGateway(
      { hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: spoolDir, memoryThreshold: 4096 } },
      { logger: silentLogger },
    );
    await gateway.use(plugin);
    const [address] = await gateway.listen();
    try {
      expect(await sendBody(address!.port, BODY)).toBe(451);
      expect(queued).toEqual([]);
      expect(readdirSync(spoolDir)).toEqual([]);
      // with the space back, the same message goes through whole
      rmSync(join(mnt, 'filler'));
      expect(await sendBody(address!.port, BODY)).toBe(250);
      expect(queued).toHaveLength(1);
      expect(queued[0]!.subarray(queued[0]!.indexOf('Subject:')).toString()).toBe(BODY);
    } finally {
      await gateway.close(1_000);
    }
  });
});

describe('spool files left by a gateway that died in the middle of DATA', () => {
  it('are removed at start once an hour old; files of running gateways, fresh files and foreign files stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-spool-orphans-'));
    const spoolDir = join(dir, 'spool');
    mkdirSync(spoolDir, { mode: 0o700 });
    // a pid that is not running: past the kernel's pid_max
    const deadPid = 4_194_305;
    const files = {
      dead: `${deadPid}.0a1b2c3d.7.eml`,
      // this process's pid under another instance tag: an earlier life of the same pid (PID 1 in a container)
      samePidEarlierLife: `${process.pid}.deadbeef.3.eml`,
      // a dead pid, but written a minute ago: maybe a gateway in another container sharing the directory
      deadButFresh: `${deadPid}.0a1b2c3e.8.eml`,
      // the parent (vitest's main process) is alive: another gateway's message in flight
      running: `${process.ppid}.12345678.1.eml`,
      foreign: 'notes.txt',
    };
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const [what, name] of Object.entries(files)) {
      writeFileSync(join(spoolDir, name), 'partial body');
      if (what !== 'deadButFresh') utimesSync(join(spoolDir, name), twoHoursAgo, twoHoursAgo);
    }
    const first = createGateway({ hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: spoolDir } }, { logger: silentLogger });
    // a second gateway of this process on the same directory, started while the first has a message in flight
    const second = createGateway({ hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: spoolDir } }, { logger: silentLogger });
    try {
      await first.listen();
      expect(readdirSync(spoolDir).sort()).toEqual([files.deadButFresh, files.running, files.foreign].sort());
      const { plugin } = recorder();
      await first.close(1_000);
      const inFlight = createGateway({ hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: spoolDir, memoryThreshold: 1024 } }, { logger: silentLogger });
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let spooled: string | undefined;
      await inFlight.use(plugin);
      await inFlight.use(
        definePlugin({
          name: 'slow-store',
          setup({ tap }) {
            tap('queue', async (_s, tx) => {
              spooled = tx.message.spoolPath;
              await held;
            });
          },
        }),
      );
      const [address] = await inFlight.listen();
      const sending = sendBody(address!.port, BODY);
      await until(() => spooled !== undefined);
      utimesSync(spooled!, twoHoursAgo, twoHoursAgo); // even an old-looking file of a live spool stays
      await second.listen();
      expect(existsSync(spooled!)).toBe(true);
      release();
      expect(await sending).toBe(250);
      await inFlight.close(1_000);
    } finally {
      await first.close(1_000);
      await second.close(1_000);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
