/**
 * Property tests of the on-disk queue: an entry written is read back exactly, whatever
 * strings it holds; a .json file of arbitrary bytes reads as a JSON value or fails with
 * a SyntaxError (nothing else); and the relay's startup scan over a queue directory
 * with truncated and garbage envelope files among good ones does not fail, schedules
 * exactly the good entries that still have work, removes the finished ones and cleans
 * up bodies without an envelope.
 */
import fc from 'fast-check';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, type DnsResolver } from '@mailgate/core';
import { relayOptionsSchema } from '../src/index.js';
import type { RelayHooks } from '../src/hooks.js';
import { Relay } from '../src/relay.js';
import { QueueStore, type QueueEntry, type QueueRecipient } from '../src/store.js';
import { useScratchDir } from './scratch.js';

const scratch = useScratchDir('mg-store-prop-');
const freshDir = () => scratch.fresh('q');

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.fullUnicodeString({ maxLength: 10 }), fc.string16bits({ maxLength: 8 }));
const recipientArb: fc.Arbitrary<QueueRecipient> = fc.record(
  {
    address: text,
    domain: text,
    status: fc.constantFrom<QueueRecipient['status']>('pending', 'delivered', 'failed', 'held'),
    attempts: fc.nat(50),
    lastError: text,
    statusCode: fc.constantFrom('5.1.1', '4.0.0'),
    remoteMta: text,
    notified: fc.boolean(),
    notify: fc.constantFrom<QueueRecipient['notify']>(['NEVER'], ['SUCCESS', 'FAILURE'], ['DELAY']),
    orcpt: fc.record({ type: fc.constantFrom('rfc822', 'utf-8'), address: text }),
    response: text,
  },
  { requiredKeys: ['address', 'domain', 'status', 'attempts'] },
);

let ids = 0;
/** Queue ids are unique, sortable and match the store's pattern. */
const nextId = () => `ID${String(ids++).padStart(10, '0')}`;
const entryArb: fc.Arbitrary<QueueEntry> = fc
  .record({
    sender: text,
    created: fc.nat(),
    attempts: fc.nat(50),
    size: fc.nat(),
    bodyType: fc.constantFrom<QueueEntry['bodyType']>('7BIT', '8BITMIME', 'BINARYMIME'),
    smtputf8: fc.boolean(),
    kind: fc.constantFrom<QueueEntry['kind']>('message', 'bounce', 'double-bounce'),
    recipients: fc.array(recipientArb, { minLength: 1, maxLength: 4 }),
    dsn: fc.option(fc.record({ ret: fc.constantFrom<'FULL' | 'HDRS'>('FULL', 'HDRS'), envid: text }, { requiredKeys: [] }), { nil: undefined }),
  })
  // never due during the test: the scan schedules, nothing is delivered
  .map(({ dsn, ...e }) => ({ version: 1 as const, id: nextId(), nextAttempt: Date.now() + 86_400_000, ...e, ...(dsn ? { dsn } : {}) }));

/** Truncated envelopes and garbage: what a crash, a full disk or a stray editor leaves (never valid JSON). */
const brokenJson = (entry: QueueEntry) =>
  fc
    .oneof(
      fc.nat().map((cut) => JSON.stringify(entry).slice(0, cut % JSON.stringify(entry).length)),
      fc.constantFrom('', '\0\0\0\0', '{', '{"version":1,', 'null,', '\ufeff{}x', '[}'),
      fc.uint8Array({ maxLength: 40 }).map((b) => `{${Buffer.from(b).toString('latin1')}`),
    )
    .filter((t) => {
      try {
        JSON.parse(t);
        return false;
      } catch {
        return true;
      }
    });

const isSettled = (r: QueueRecipient) => (r.status === 'delivered' && r.notified !== false) || (r.status === 'failed' && r.notified === true);

describe('QueueStore', () => {
  it('reads back exactly the entry it wrote, whatever its strings hold', async () => {
    const store = new QueueStore(freshDir());
    await store.init();
    await fc.assert(
      fc.asyncProperty(entryArb, async (entry) => {
        await store.write(entry);
        expect(await store.read(entry.id)).toEqual(entry);
        expect(await store.scan(false)).toContain(entry.id);
      }),
      { numRuns: 60 },
    );
  });

  it('an envelope file of arbitrary content reads as a JSON value or fails with a SyntaxError, nothing else', async () => {
    const store = new QueueStore(freshDir());
    await store.init();
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 60 }), entryArb.chain(brokenJson).map((t) => Buffer.from(t))), async (bytes) => {
        const id = nextId();
        await writeFile(store.jsonPath(id), bytes);
        const read = await store.read(id).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        if ('error' in read) expect(read.error).toBeInstanceOf(SyntaxError);
        else expect(read.value).toEqual(JSON.parse(Buffer.from(bytes).toString('utf8')));
      }),
      { numRuns: 300 },
    );
    expect(await store.read(nextId())).toBeUndefined();
  });
});

describe('relay startup scan', () => {
  it('a queue with broken envelopes among good ones: start() succeeds and schedules exactly the good entries with work left', async () => {
    const deps = {
      options: relayOptionsSchema.parse({ controlPoll: '1h' }),
      dns: {} as DnsResolver,
      log: createLogger({ level: 'silent' }),
      hostname: 'mx.test',
      hooks: {} as RelayHooks,
    };
    const queue = fc.tuple(
      fc.array(entryArb, { maxLength: 5 }),
      fc.array(entryArb.chain((e) => brokenJson(e).map((json) => ({ id: e.id, json }))), { maxLength: 4 }),
      fc.array(fc.constantFrom('notes.txt', 'x.json', 'lower1234.json', 'ID.eml'), { maxLength: 2 }),
      fc.nat(3),
    );
    await fc.assert(
      fc.asyncProperty(queue, async ([good, broken, strays, orphans]) => {
        const store = new QueueStore(freshDir());
        await store.init();
        for (const e of good) await store.add(e, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
        for (const b of broken) {
          await writeFile(store.jsonPath(b.id), b.json);
          await writeFile(store.emlPath(b.id), 'body');
        }
        for (const name of strays) await writeFile(join(store.msgDir, name), '{}');
        const orphanIds = Array.from({ length: orphans }, nextId);
        for (const id of orphanIds) await writeFile(store.emlPath(id), 'no envelope');

        const relay = new Relay({ ...deps, store });
        try {
          await relay.start();
          const withWork = good.filter((e) => e.recipients.some((r) => r.status !== 'held' && !isSettled(r)));
          expect(relay.size).toBe(withWork.length);
          const left = await readdir(store.msgDir);
          for (const e of good) expect(left.includes(`${e.id}.json`)).toBe(!e.recipients.every(isSettled));
          for (const id of orphanIds) expect(left).not.toContain(`${id}.eml`);
        } finally {
          await relay.close(100);
        }
      }),
      { numRuns: 40 },
    );
  });
});
