/**
 * `mailgate spam train` on what an admin's paths may hold (FIFOs, symlink loops) and
 * the Bayes file it replaces while a gateway reads it. The command runs in-process
 * with the context the mailgate CLI gives it.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coreConfigSchema } from '@mailgate/core';
import { BayesStore, parseContent, spamCommand, spamOptionsSchema } from '../src/index.js';
import { message } from './helpers.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spam-hostile-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function spam(args: string[], bayesFile = join(dir, 'bayes.db')) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const options = spamOptionsSchema.parse({ bayes: { file: bayesFile } });
  const config = coreConfigSchema.parse({ hostname: 'mx.test' });
  const code = await spamCommand.run(args, { options, configDir: dir, config, stdout, stderr });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('spam train paths', () => {
  it('refuses a FIFO given as a path instead of waiting forever for a writer', async () => {
    const fifo = join(dir, 'spam.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const args of [['train', '--spam', fifo], ['train', '--mbox', '--spam', fifo]]) {
      const r = await spam(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(fifo);
      expect(r.stderr).toMatch(/not a regular file/);
    }
  });

  it('walks a directory holding a FIFO and a symlink loop: both skipped, the message learned', async () => {
    const maildir = join(dir, 'walk');
    await mkdir(join(maildir, 'sub'), { recursive: true });
    execFileSync('mkfifo', [join(maildir, 'sub', 'pipe')]);
    await symlink('..', join(maildir, 'sub', 'loop'));
    await writeFile(join(maildir, 'sub', '1.eml'), message({ body: 'cheap pills' }));
    const r = await spam(['train', '--spam', maildir], join(dir, 'walk.db'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^1 learned/);
  });
});

describe('the Bayes file train replaces', () => {
  it('keeps the mode the admin gave it (e.g. group-readable for the gateway user)', async () => {
    const file = join(dir, 'shared.db');
    const store = await BayesStore.open(file);
    store.learn(await parseContent(Buffer.from(message({ body: 'first' }))), 'spam');
    await store.save();
    await chmod(file, 0o640);
    store.learn(await parseContent(Buffer.from(message({ body: 'second' }))), 'ham');
    await store.save();
    // Replaced by rename: a new file would carry the temporary file's 0600, and a gateway
    // running as another user of the group could no longer read (nor, after a restart, open) it.
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(await BayesStore.open(file)).toMatchObject({ spamCount: 1, hamCount: 1 });
  });

  it('a new file is private (0600): it holds words of the mail it learned', async () => {
    const file = join(dir, 'new.db');
    const store = await BayesStore.open(file);
    store.learn(await parseContent(Buffer.from(message())), 'ham');
    await store.save();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
