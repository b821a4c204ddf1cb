/**
 * The tap signal in the relay's `queue` tap: once the tap has timed out (the client got
 * 451 and will send the message again), the body stops being written and no copy is
 * committed to the queue, so the message is not delivered twice.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { definePlugin } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import relay, { relayQueue } from '../src/index.js';
import { QueueStore, newQueueId, type QueueEntry } from '../src/store.js';
import { allowRelay, sendMail } from './helpers.js';

/** The relay with a 1 ms limit on its taps (not on its setup, as `use(…, { timeout })` would). */
const quickRelay = definePlugin({
  name: 'quick-relay',
  options: relay.options!,
  setup: (context) => relay.setup({ ...context, tap: (hook, fn, options) => context.tap(hook, fn, { ...options, timeout: 1 }) }),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function entry(): QueueEntry {
  return { version: 1, id: newQueueId(), sender: 'a@b.test', created: 1, nextAttempt: 1, attempts: 0, size: 3, bodyType: '7BIT', smtputf8: false, kind: 'message', recipients: [] };
}

/** Files in msg/ and tmp/ once they have stayed the same for 200 ms (an abandoned write has settled). */
async function settledFiles(root: string): Promise<{ msg: string[]; tmp: string[] }> {
  let last = '';
  let quiet = 0;
  let files = { msg: [] as string[], tmp: [] as string[] };
  for (let i = 0; i < 250 && quiet < 10; i++) {
    files = { msg: await readdir(join(root, 'msg')).catch(() => []), tmp: await readdir(join(root, 'tmp')).catch(() => []) };
    const now = JSON.stringify(files);
    quiet = now === last ? quiet + 1 : 0;
    last = now;
    await sleep(20);
  }
  return files;
}

describe('the queue store and an abort signal', () => {
  it('stops writing a body when the signal aborts and leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-signal-'));
    try {
      const store = new QueueStore(dir);
      await store.init();
      const controller = new AbortController();
      let chunks = 0;
      const body = new Readable({
        read() {
          chunks++;
          if (chunks === 2) controller.abort(Object.assign(new Error('timed out after 5 ms'), { name: 'TimeoutError' }));
          setTimeout(() => this.push(Buffer.alloc(64 * 1024, 120)), 5);
        },
      });
      await expect(store.add(entry(), body, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
      expect(chunks).toBeLessThan(10);
      expect(await readdir(join(dir, 'msg'))).toEqual([]);
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('commits nothing when the signal aborts while a Buffer body is being written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-signal-'));
    try {
      const store = new QueueStore(dir);
      await store.init();
      const controller = new AbortController();
      const reason = Object.assign(new Error('timed out after 5 ms'), { name: 'TimeoutError' });
      // A Buffer body is written in one go; the abort lands while writeFile runs. (The check
      // after the fsync, for an abort during it, has no seam to be reached from here.)
      const adding = store.add(entry(), Buffer.from('abc'), controller.signal);
      controller.abort(reason);
      await expect(adding).rejects.toMatchObject({ name: 'AbortError' });
      expect(await readdir(join(dir, 'msg'))).toEqual([]);
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the queue tap past its timeout', () => {
  it('a 451 for a message still being written: no copy of it is left in the queue', async () => {
    const gw = await startTestGateway({ hostname: 'relay.test', spool: { memoryThreshold: '16MB' } }, async (g, dir) => {
      await g.use(allowRelay);
      await g.use(quickRelay, { queueDir: join(dir, 'queue') });
    });
    try {
      // Kept in memory by the core, so the write cannot fail on its own (a spool file may be
      // released under a write that outlived its 451, which would hide the difference).
      const text = `Subject: big\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(8 * 1024)}`;
      await expect(sendMail(gw.port, 'a@sender.test', ['b@dest.test'], text)).rejects.toThrow(/expected 250, got .*"code":451/);
      const files = await settledFiles(join(gw.dir, 'queue'));
      expect(files).toEqual({ msg: [], tmp: [] });
      expect(relayQueue(gw.gateway)?.scheduled).toBe(0);
    } finally {
      await gw.close();
    }
  });
});
