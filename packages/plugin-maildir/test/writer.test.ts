import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Message } from '@mailgate/core';
import { cleanTmp, DirSyncer, MaildirWriter, sanitizeHost, type WriterOptions } from '../src/maildir.js';
import { readMaildir, send, startMaildirGateway, tempDir, type MaildirGateway } from './helpers.js';

const HOUR = 3_600_000;
const options: WriterOptions = { fileMode: 0o600, dirMode: 0o700, fsync: true, cleanup: false, hostname: 'host.test' };

function memoryMessage(text: string): Message {
  const body = Buffer.from(text);
  return new Message({ kind: 'memory', chunks: [body] }, body.length);
}

let gw: MaildirGateway | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  for (const c of cleanups.splice(0)) await c();
});

describe('unique names', () => {
  it('<sec>.M<usec>P<pid>Q<seq>.<host>,S=<size>, unique within the process', () => {
    const w = new MaildirWriter(options);
    const names = new Set<string>();
    for (let i = 0; i < 10_000; i++) names.add(w.uniqueName(1234));
    expect(names.size).toBe(10_000);
    const [first] = names;
    expect(first).toMatch(new RegExp(`^\\d{10}\\.M\\d{1,6}P${process.pid}Q1\\.host\\.test,S=1234$`));
  });

  it('escapes "/", ":" and "," in the host name (they have a meaning in Maildir names)', () => {
    expect(sanitizeHost('a/b:c,d')).toBe('a\\057b\\072c\\054d');
    expect(new MaildirWriter({ ...options, hostname: 'x:y' }).uniqueName(1)).toMatch(/\.x\\072y,S=1$/);
  });
});

describe('fsync accounting', () => {
  it('one fdatasync per file; concurrent deliveries into one new/ share directory fsyncs', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const w = new MaildirWriter(options);
    const dir = join(t.dir, 'box');
    await Promise.all(Array.from({ length: 50 }, (_, i) => w.deliver(memoryMessage(`Subject: ${i}\r\n\r\nx\r\n`), [{ header: Buffer.alloc(0), dirs: [dir] }])));
    expect(await readdir(join(dir, 'new'))).toHaveLength(50);
    expect(w.stats.files).toBe(50);
    expect(w.stats.fileSyncs).toBe(50);
    expect(w.stats.renames).toBe(50);
    expect(w.stats.dirSyncs).toBeGreaterThanOrEqual(1);
    expect(w.stats.dirSyncs).toBeLessThanOrEqual(50);
    await w.close();
  });

  it('group commit: callers arriving during an fsync share the next one', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    let count = 0;
    const s = new DirSyncer(t.dir, () => count++);
    await Promise.all(Array.from({ length: 10 }, () => s.sync()));
    expect(count).toBe(2); // the first starts at once; the nine others all wait for one more
    await s.sync();
    expect(count).toBe(3);
    await s.close();
  });

  it('an fsync about to start waits (briefly) for announced deliveries, so one fsync covers them all', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    let count = 0;
    const s = new DirSyncer(t.dir, () => count++, 50);
    s.announce();
    s.announce();
    s.announce();
    const first = s.sync(true);
    await new Promise((r) => setTimeout(r, 5));
    expect(count).toBe(0); // two announced deliveries are still on their way
    const second = s.sync(true);
    const third = s.sync(true);
    await Promise.all([first, second, third]);
    expect(count).toBe(1);
    // an announced delivery that gives up does not hold the fsync back
    s.announce();
    s.announce();
    const fourth = s.sync(true);
    s.cancel();
    await fourth;
    expect(count).toBe(2);
    // nobody announced: no waiting at all (one connection at a time pays no delay)
    const t0 = performance.now();
    await s.sync();
    expect(performance.now() - t0).toBeLessThan(45);
    expect(count).toBe(3);
    await s.close();
  });

  it('fsync off: no syncs at all', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const w = new MaildirWriter({ ...options, fsync: false });
    await w.deliver(memoryMessage('x\r\n'), [{ header: Buffer.from('A: b\r\n'), dirs: [join(t.dir, 'a'), join(t.dir, 'b')] }]);
    expect(w.stats).toMatchObject({ files: 1, fileSyncs: 0, dirSyncs: 0, renames: 1, links: 1 });
    await w.close();
  });
});

describe('tmp/ cleanup', () => {
  it('removes files whose mtime and ctime are older than maxAge, keeps the rest', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    await mkdir(join(t.dir, 'tmp'), { recursive: true });
    await writeFile(join(t.dir, 'tmp', 'old'), 'x');
    await writeFile(join(t.dir, 'tmp', 'new'), 'x');
    await mkdir(join(t.dir, 'tmp', 'subdir'));
    const old = new Date(Date.now() - 40 * HOUR);
    await utimes(join(t.dir, 'tmp', 'old'), old, old);
    // ctime cannot be set back: judge "now" as 37 h later for the old file, 35 h for the other
    expect(await cleanTmp(t.dir, 36 * HOUR, Date.now() + 35 * HOUR)).toBe(0);
    expect(await cleanTmp(t.dir, 36 * HOUR, Date.now() + 37 * HOUR)).toBe(2);
    expect(await readdir(join(t.dir, 'tmp'))).toEqual(['subdir']);
    expect(await cleanTmp(join(t.dir, 'missing'), 36 * HOUR)).toBe(0);
  });

  it('the plugin cleans a Maildir\'s tmp/ when it first uses it, and again after the interval', async () => {
    gw = await startMaildirGateway({ cleanup: { maxAge: '1s', interval: '0s' } });
    const box = join(gw.root, 'example.test/bob');
    await mkdir(join(box, 'tmp'), { recursive: true });
    await writeFile(join(box, 'tmp', 'stale'), 'left by a crash');
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], 'Subject: x\r\n\r\ny\r\n')).data?.code).toBe(250);
    for (let i = 0; i < 50 && (await readdir(join(box, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(join(box, 'tmp'))).toEqual([]);
    expect(await readMaildir(box)).toHaveLength(1);
  });
});
