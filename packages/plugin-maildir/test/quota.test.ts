import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMaildirsize, QuotaStore, quotaDefinition, scanMaildir } from '../src/quota.js';
import { readMaildir, send, startMaildirGateway, tempDir, type MaildirGateway } from './helpers.js';

const msg = (n: number, size = 0) => Buffer.from(`Subject: quota ${n}\r\n\r\n${'q'.repeat(size)}\r\n`);

let gw: MaildirGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('maildirsize (Maildir++)', () => {
  it('parses the definition and sums the deltas, including padded and negative lines', () => {
    expect(parseMaildirsize('1000S,10C\n   500     2\n-100 -1\n\n')).toEqual({ definition: '1000S,10C', usage: { bytes: 400, messages: 1 } });
    expect(parseMaildirsize('1000S\nnot a line\n')).toBeUndefined();
    expect(quotaDefinition({ bytes: 1024, messages: 5 })).toBe('1024S,5C');
    expect(quotaDefinition({ messages: 5 })).toBe('5C');
  });

  it('scans new/ and cur/ of the Maildir and of its folders, sizes from S= or stat', async () => {
    const t = await tempDir();
    try {
      const box = t.dir;
      for (const d of ['new', 'cur', 'tmp', '.Sent/new', '.Sent/cur']) await mkdir(join(box, d), { recursive: true });
      await writeFile(join(box, 'new', '1.M1P1Q1.h,S=100'), 'x'); // S= wins over the real size
      await writeFile(join(box, 'cur', '2.M1P1Q2.h,S=50:2,S'), 'x');
      await writeFile(join(box, 'cur', 'no-size'), 'twelve bytes');
      await writeFile(join(box, 'tmp', 'ignored,S=999'), 'x');
      await writeFile(join(box, '.Sent/cur', '3.M1P1Q3.h,S=7:2,S'), 'x');
      expect(await scanMaildir(box)).toEqual({ bytes: 169, messages: 4 });
      const store = new QuotaStore({ fileMode: 0o600, uniqueName: () => 'rebuild' });
      expect(await store.usage(box, { bytes: 1000 })).toEqual({ bytes: 169, messages: 4 });
      expect(await readFile(join(box, 'maildirsize'), 'utf8')).toBe('1000S\n169 4\n');
      await store.add(box, { bytes: 31, messages: 1 }, { bytes: 1000 });
      expect(await store.usage(box, { bytes: 1000 })).toEqual({ bytes: 200, messages: 5 });
      // another definition (the admin changed the quota): rebuilt from a scan
      expect(await store.usage(box, { messages: 3 })).toEqual({ bytes: 169, messages: 4 });
      expect(await readFile(join(box, 'maildirsize'), 'utf8')).toBe('3C\n169 4\n');
    } finally {
      await t.cleanup();
    }
  });
});

describe('quota enforcement', () => {
  it('counts messages; a full mailbox gets 452 4.2.2 at RCPT', async () => {
    gw = await startMaildirGateway({ quota: { messages: 2 } });
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(1))).data?.code).toBe(250);
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(2))).data?.code).toBe(250);
    const third = await send(gw.port, 's@client.test', ['bob@example.test', 'alice@example.test'], msg(3));
    expect(third.rcpt).toEqual([452, 250]);
    expect(third.replies[1]).toMatch(/^452 4\.2\.2 /);
    expect(third.data?.code).toBe(250);
    expect(await readMaildir(join(gw.root, 'example.test/bob'))).toHaveLength(2);
    const lines = (await readFile(join(gw.root, 'example.test/bob/maildirsize'), 'utf8')).split('\n');
    expect(lines[0]).toBe('2C');
    expect(parseMaildirsize(lines.join('\n'))!.usage.messages).toBe(2);
  });

  it('bytes: 452 at RCPT when SIZE= says it will not fit, 552 5.2.2 at end of data otherwise', async () => {
    gw = await startMaildirGateway({ mailboxes: ['bob@example.test', { address: 'big@example.test', quota: { bytes: '1MB' } }], quota: { bytes: '4KB' } });
    const sized = await send(gw.port, 's@client.test', ['bob@example.test'], msg(1, 5000), ' SIZE=5100');
    expect(sized.rcpt).toEqual([452]);
    const unsized = await send(gw.port, 's@client.test', ['bob@example.test'], msg(2, 5000));
    expect(unsized.rcpt).toEqual([250]);
    expect(unsized.data?.code).toBe(552);
    expect(unsized.data?.text).toMatch(/^552 5\.2\.2 /);
    // small enough: fine (and the refused one left nothing), and a per-mailbox quota overrides the default
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(3, 1000))).data?.code).toBe(250);
    expect(await readMaildir(join(gw.root, 'example.test/bob'))).toHaveLength(1);
    expect((await send(gw.port, 's@client.test', ['big@example.test'], msg(4, 5000))).data?.code).toBe(250);
    expect(await readFile(join(gw.root, 'example.test/big/maildirsize'), 'utf8')).toMatch(/^1048576S\n\d+ 1\n$/);
  });

  it('re-counts an old maildirsize that says "full" (messages removed by a mail reader)', async () => {
    gw = await startMaildirGateway({ quota: { messages: 1 } });
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(1))).data?.code).toBe(250);
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(2))).rcpt).toEqual([452]);
    // the reader deletes the message but does not update maildirsize (allowed by Maildir++)
    const { readdir, unlink } = await import('node:fs/promises');
    const newDir = join(gw.root, 'example.test/bob/new');
    for (const f of await readdir(newDir)) await unlink(join(newDir, f));
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(3))).rcpt).toEqual([452]); // file is fresh: trusted
    const old = new Date(Date.now() - 20 * 60_000);
    await utimes(join(gw.root, 'example.test/bob/maildirsize'), old, old);
    expect((await send(gw.port, 's@client.test', ['bob@example.test'], msg(4))).data?.code).toBe(250);
  });
});
