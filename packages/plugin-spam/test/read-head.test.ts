import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileHead } from '../src/read-head.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('readFileHead', () => {
  it('reads a file up to the limit and says whether it cut', async () => {
    dir = mkdtempSync(join(tmpdir(), 'read-head-'));
    const file = join(dir, 'm.eml');
    writeFileSync(file, 'x'.repeat(1000));
    expect(await readFileHead(file, 2000)).toEqual({ bytes: Buffer.from('x'.repeat(1000)), truncated: false });
    const cut = await readFileHead(file, 100);
    expect(cut.bytes.length).toBe(100);
    expect(cut.truncated).toBe(true);
  });

  it('reads a pipe to its end although it reports a size of 0 (spam check <(zcat msg.gz))', async () => {
    dir = mkdtempSync(join(tmpdir(), 'read-head-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const text = 'Subject: piped\r\n\r\n' + 'body line\r\n'.repeat(10_000);
    const writer = spawn('sh', ['-c', `cat > "$1"`, 'sh', fifo], { stdio: ['pipe', 'ignore', 'ignore'] });
    const closed = new Promise((done) => writer.once('close', done));
    writer.stdin.end(text);
    const { bytes, truncated } = await readFileHead(fifo, 1 << 20);
    expect(bytes.toString()).toBe(text);
    expect(truncated).toBe(false);
    await closed;
  });
});
