import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { readMaildir, send, splitDelivered, startMaildirGateway, type MaildirGateway } from './helpers.js';

const run = promisify(execFile);
const msg = (subject: string, size = 0) => Buffer.from(`Subject: ${subject}\r\n\r\n${`${'f'.repeat(78)}\r\n`.repeat(Math.ceil(size / 80))}end\r\n`);

/** Every file under `dir` (recursively), relative paths. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

let gw: MaildirGateway | undefined;
const mounts: string[] = [];
afterEach(async () => {
  // close the gateway (and its open directory handles) before unmounting, then remove the files
  await gw?.gateway.close(1_000);
  for (const m of mounts.splice(0)) await run('umount', [m]);
  await gw?.close();
  gw = undefined;
});

/** Mount a small tmpfs (root only); undefined where mounting is not allowed. */
async function tmpfs(path: string, size: string): Promise<string | undefined> {
  await mkdir(path, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', path]);
  } catch {
    return undefined;
  }
  mounts.push(path);
  return path;
}

describe('write failures: 451 4.3.0 and nothing partial in new/', () => {
  it('a root below a regular file (ENOTDIR)', async () => {
    gw = await startMaildirGateway((root) => ({ root: join(root, 'file', 'mail') }));
    await mkdir(gw.root, { recursive: true });
    await writeFile(join(gw.root, 'file'), 'not a directory');
    const r = await send(gw.port, 's@client.test', ['bob@example.test'], msg('enotdir'));
    expect(r.rcpt).toEqual([250]);
    expect(r.data?.text).toMatch(/^451 4\.3\.0 /);
  });

  it('a later recipient fails after an earlier one was published: the earlier is rolled back', async () => {
    gw = await startMaildirGateway();
    const first = msg('first');
    expect((await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test'], first)).data?.code).toBe(250);
    // bob's new/ becomes a regular file: the rename into it fails with ENOTDIR
    const bob = join(gw.root, 'example.test/bob');
    await rm(join(bob, 'new'), { recursive: true });
    await writeFile(join(bob, 'new'), '');
    const r = await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test'], msg('second'));
    expect(r.data?.text).toMatch(/^451 4\.3\.0 /);
    const alice = await readMaildir(join(gw.root, 'example.test/alice'));
    expect(alice).toHaveLength(1);
    splitDelivered(alice[0]!.bytes, first);
    expect(await files(join(gw.root, 'example.test'))).toEqual([`alice/new/${alice[0]!.name}`, 'bob/new']);
  });

  it('the same with one hard-linked file (no Delivered-To): no link is left behind', async () => {
    gw = await startMaildirGateway({ deliveredTo: false });
    expect((await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test', 'carol@example.test'], msg('first'))).data?.code).toBe(250);
    const carol = join(gw.root, 'example.test/carol');
    await rm(join(carol, 'new'), { recursive: true });
    await writeFile(join(carol, 'new'), '');
    const r = await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test', 'carol@example.test'], msg('second'));
    expect(r.data?.text).toMatch(/^451 4\.3\.0 /);
    const left = await files(join(gw.root, 'example.test'));
    expect(left.filter((f) => f.startsWith('alice/'))).toHaveLength(1);
    expect(left.filter((f) => f.startsWith('bob/'))).toHaveLength(1);
    expect(left.filter((f) => f.includes('/tmp/'))).toEqual([]);
  });

  it('disk full (ENOSPC on a small tmpfs): 451, no partial file anywhere, and the next small message is fine', async (ctx) => {
    gw = await startMaildirGateway((root) => ({ root }), { limits: { maxMessageSize: '8MB' } });
    if (!(await tmpfs(gw.root, '512k'))) return ctx.skip('cannot mount a tmpfs here');
    const small = msg('small', 1000);
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], small)).data?.code).toBe(250);
    const big = msg('big', 2 * 1024 * 1024);
    const r = await send(gw.port, 's@client.test', ['bob@example.test'], big);
    expect(r.data?.text).toMatch(/^451 4\.3\.0 /);
    const box = join(gw.root, 'example.test/bob');
    expect(await readdir(join(box, 'tmp'))).toEqual([]);
    const stored = await readMaildir(box);
    expect(stored).toHaveLength(1);
    splitDelivered(stored[0]!.bytes, small);
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], small)).data?.code).toBe(250);
    expect(await readMaildir(box)).toHaveLength(2);
  });

  it('across file systems the hard link becomes an fsync\'d copy', async (ctx) => {
    gw = await startMaildirGateway({ deliveredTo: false });
    const bob = join(gw.root, 'example.test/bob');
    if (!(await tmpfs(bob, '1m'))) return ctx.skip('cannot mount a tmpfs here');
    const sent = msg('exdev');
    const r = await send(gw.port, 's@client.test', ['alice@example.test', 'bob@example.test'], sent);
    expect(r.data?.code).toBe(250);
    const [a] = await readMaildir(join(gw.root, 'example.test/alice'));
    const [b] = await readMaildir(bob);
    expect(b!.bytes.equals(a!.bytes)).toBe(true);
    expect(b!.name).toBe(a!.name);
    expect((await stat(join(bob, 'new', b!.name))).nlink).toBe(1);
    expect(await readdir(join(bob, 'tmp'))).toEqual([]);
  });

  it('a Maildir removed while the gateway runs is created again', async () => {
    gw = await startMaildirGateway();
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg('one'))).data?.code).toBe(250);
    await rm(join(gw.root, 'example.test/bob'), { recursive: true });
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg('two'))).data?.code).toBe(250);
    const [m] = await readMaildir(join(gw.root, 'example.test/bob'));
    expect(m!.bytes.toString()).toContain('Subject: two');
    expect(await readFile(join(gw.root, 'example.test/bob/new', m!.name), 'utf8')).toContain('Return-Path:');
  });

  it('a later queue step fails: the delivered files are withdrawn from new/ (the client retries)', async () => {
    const { startTestGateway } = await import('@mailgate/core/testing');
    const { tempfail } = await import('@mailgate/core');
    const maildir = (await import('@mailgate/plugin-maildir')).default;
    let failNext = true;
    const t = await startTestGateway({}, async (g, dir) => {
      await g.use(maildir, { root: join(dir, 'mail'), domains: ['example.test'], quota: { messages: 10 } });
      g.hooks.queue.tap('flaky-relay', () => (failNext ? tempfail('relay queue unavailable') : undefined));
    });
    try {
      const r = await send(t.port, 's@client.test', ['alice@example.test', 'bob@example.test'], msg('withdrawn'));
      expect(r.data?.text).toMatch(/^451 /);
      const box = (u: string) => join(t.dir, 'mail/example.test', u);
      expect(await readdir(join(box('alice'), 'new'))).toEqual([]);
      expect(await readdir(join(box('bob'), 'new'))).toEqual([]);
      expect(await readFile(join(box('alice'), 'maildirsize'), 'utf8')).toMatch(/^10C\n(\d+ 1\n-\d+ -1\n|0 0\n)$/);
      failNext = false;
      expect((await send(t.port, 's@client.test', ['alice@example.test'], msg('retried'))).data?.code).toBe(250);
      expect(await readMaildir(box('alice'))).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it('a delivery that outlives queueTimeout gives up before publishing anything', async () => {
    gw = await startMaildirGateway({ queueTimeout: '1ms' }, { limits: { maxMessageSize: '32MB' } });
    const r = await send(gw.port, 's@client.test', ['bob@example.test'], msg('slow', 3 * 1024 * 1024));
    expect(r.data?.code).toBe(451);
    const box = join(gw.root, 'example.test/bob');
    // The write may still be running in the background when the 451 is sent (the Maildir
    // may not even exist yet): wait until tmp/, new/ and cur/ exist and tmp/ has stayed
    // empty for 200 ms, i.e. the writer has created its file and given up on it.
    let quiet = 0;
    for (let i = 0; i < 250 && quiet < 10; i++) {
      const [tmp, nu, cur] = await Promise.all(['tmp', 'new', 'cur'].map((d) => readdir(join(box, d)).catch(() => undefined)));
      quiet = tmp !== undefined && nu !== undefined && cur !== undefined && tmp.length === 0 ? quiet + 1 : 0;
      await new Promise((res) => setTimeout(res, 20));
    }
    // a writer that gave up before creating the Maildir published nothing either
    expect(await readdir(join(box, 'tmp')).catch(() => [])).toEqual([]);
    expect(await readdir(join(box, 'new')).catch(() => [])).toEqual([]);
  });
});
