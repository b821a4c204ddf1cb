/**
 * Message.removeHeaders: fields of the received header block are left out of every
 * stream (memory and spool-file bodies, ranges across chunk boundaries), the size follows,
 * the body and prepended headers are untouched.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Message } from '../../src/index.js';

const SPAMMY = (name: string) => /^x-spam-/i.test(name);
const RAW =
  'X-Spam-Flag: NO\r\n' +
  'Subject: hi\r\n' +
  'X-Spam-Status: No, score=-5.0\r\n\trequired=5.0\r\n' +
  'From: <a@b.test>\r\n' +
  'x-spam-level: \r\n' +
  '\r\n' +
  'X-Spam-Flag: this line is body, not a header\r\n';
const CLEAN = 'Subject: hi\r\nFrom: <a@b.test>\r\n\r\nX-Spam-Flag: this line is body, not a header\r\n';

async function text(m: Message): Promise<string> {
  return (await m.toBuffer()).toString('latin1');
}

/** `bytes` split at the given offsets. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  return out;
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('Message.removeHeaders', () => {
  it('leaves out matching fields of the received header block, with their continuation lines', async () => {
    const bytes = Buffer.from(RAW, 'latin1');
    const m = new Message({ kind: 'memory', chunks: [bytes] }, bytes.length);
    m.prependHeader('X-Spam-Flag', 'YES');
    expect(await m.removeHeaders(SPAMMY)).toBe(3);
    expect(await text(m)).toBe('X-Spam-Flag: YES\r\n' + CLEAN);
    expect(m.size).toBe(Buffer.byteLength('X-Spam-Flag: YES\r\n' + CLEAN));
    expect((await m.headers()).map((h) => h.name)).toEqual(['X-Spam-Flag', 'Subject', 'From']);
    // again: nothing more to remove, the same output
    expect(await m.removeHeaders(SPAMMY)).toBe(0);
    expect(await text(m)).toBe('X-Spam-Flag: YES\r\n' + CLEAN);
    // without the added headers
    const plain: Buffer[] = [];
    for await (const c of m.stream({ includeAdded: false })) plain.push(c as Buffer);
    expect(Buffer.concat(plain).toString('latin1')).toBe(CLEAN);
  });

  it('cuts correctly wherever the chunks of the body are split', async () => {
    const bytes = Buffer.from(RAW, 'latin1');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const m = new Message({ kind: 'memory', chunks: chunked(bytes, cuts) }, bytes.length);
        await m.removeHeaders(SPAMMY);
        expect(await text(m)).toBe(CLEAN);
        expect(m.size).toBe(CLEAN.length);
      }),
      { numRuns: 200 },
    );
  });

  it('works on a spooled body, which still streams whole after the cut', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailgate-message-'));
    const path = join(dir, 'body');
    const tail = 'line of body\r\n'.repeat(30_000);
    writeFileSync(path, RAW + tail, 'latin1');
    const m = new Message({ kind: 'file', path }, Buffer.byteLength(RAW + tail));
    expect(await m.removeHeaders(SPAMMY)).toBe(3);
    const out = await text(m);
    expect(out).toBe(CLEAN + tail);
    expect(m.size).toBe(out.length);
    expect(await text(m)).toBe(out); // a second stream is the same
  });

  it('keeps a field that the 256 KiB window may have cut short, and never touches the body', async () => {
    const filler = `X-Filler: ${'a'.repeat(900)}\r\n`.repeat(300); // ~270 KB of header block
    const raw = `X-Spam-Flag: NO\r\n${filler}X-Spam-Late: beyond the window\r\n\r\nbody\r\n`;
    const bytes = Buffer.from(raw, 'latin1');
    const m = new Message({ kind: 'memory', chunks: [bytes] }, bytes.length);
    expect(await m.removeHeaders(SPAMMY)).toBe(1);
    const out = await text(m);
    expect(out.startsWith('X-Filler: ')).toBe(true);
    expect(out).toContain('X-Spam-Late: beyond the window\r\n\r\nbody\r\n');
    expect(m.size).toBe(out.length);
    // removing the filler: the field the window cut in half stays whole
    expect(await m.removeHeaders((n) => n === 'X-Filler')).toBeGreaterThan(200);
    const after = await text(m);
    expect(after).toMatch(/^(X-Filler: a{900}\r\n)*X-Spam-Late: beyond the window\r\n\r\nbody\r\n$/);
    expect(m.size).toBe(after.length);
  });
});
