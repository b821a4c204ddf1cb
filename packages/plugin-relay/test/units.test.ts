import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relayOptionsSchema } from '../src/index.js';
import { orderMx, splitHostPort } from '../src/routing.js';
import { TimeHeap } from '../src/heap.js';
import { QueueStore, newQueueId, type QueueEntry } from '../src/store.js';
import { enhancedStatus } from '../src/dsn.js';

describe('MX ordering (RFC 5321 §5.1)', () => {
  it('sorts by preference and randomizes among equal preferences', () => {
    const records = [
      { exchange: 'c', priority: 20 },
      { exchange: 'a1', priority: 10 },
      { exchange: 'a2', priority: 10 },
      { exchange: 'a3', priority: 10 },
    ];
    const firsts = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const order = orderMx(records);
      expect(order.at(-1)!.exchange).toBe('c');
      expect(order.slice(0, 3).map((r) => r.exchange).sort()).toEqual(['a1', 'a2', 'a3']);
      firsts.add(order[0]!.exchange);
    }
    expect(firsts.size).toBe(3);
  });
});

describe('helpers', () => {
  it('splits host:port', () => {
    expect(splitHostPort('mx.example:2525', 25)).toEqual({ host: 'mx.example', port: 2525 });
    expect(splitHostPort('mx.example', 25)).toEqual({ host: 'mx.example', port: 25 });
    expect(splitHostPort('[::1]:587', 25)).toEqual({ host: '::1', port: 587 });
  });
  it('reads enhanced status codes with the right class', () => {
    expect(enhancedStatus('550 5.1.1 no such user', 5)).toBe('5.1.1');
    expect(enhancedStatus('550 no such user', 5)).toBe('5.0.0');
    expect(enhancedStatus('451 4.7.1 later', 4)).toBe('4.7.1');
  });
  it('the time heap pops in time order', () => {
    const heap = new TimeHeap();
    const times = Array.from({ length: 500 }, () => Math.floor(Math.random() * 1000));
    times.forEach((t, i) => heap.push(t, String(i)));
    const out: number[] = [];
    for (let x = heap.pop(); x; x = heap.pop()) out.push(x.time);
    expect(out).toEqual([...times].sort((a, b) => a - b));
  });
});

describe('options', () => {
  it('defaults are safe and durations are parsed', () => {
    const o = relayOptionsSchema.parse({ retry: { schedule: ['200ms', '1m'] } });
    expect(o.port).toBe(25);
    expect(o.tls).toBe('opportunistic');
    expect(o.retry.schedule).toEqual([200, 60_000]);
    expect(o.retry.maxAge).toBe(5 * 86_400_000);
    const d = relayOptionsSchema.parse({});
    const total = d.retry.schedule.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(d.retry.maxAge);
  });
  it('rejects unknown keys and bad values with their path', () => {
    const r = relayOptionsSchema.safeParse({ smarthost: { host: 'a b' }, bogus: 1 });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('smarthost.host');
    expect(paths.some((p) => p === '' || p === 'bogus')).toBe(true);
  });
});

describe('queue store', () => {
  it('commits with the .json; the startup scan removes bodies without envelope and tmp files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-store-'));
    try {
      const store = new QueueStore(dir);
      await store.init();
      const id = newQueueId();
      const entry: QueueEntry = { version: 1, id, sender: 'a@b.test', created: 1, nextAttempt: 1, attempts: 0, size: 3, bodyType: '7BIT', smtputf8: false, kind: 'message', recipients: [] };
      await store.add(entry, Buffer.from('abc'));
      await writeFile(join(dir, 'msg', 'ORPHAN0000001.eml'), 'x');
      await writeFile(join(dir, 'tmp', 'half.json.1.abc'), 'x');
      expect(await store.scan(true)).toEqual([id]);
      expect((await readdir(join(dir, 'msg'))).sort()).toEqual([`${id}.eml`, `${id}.json`]);
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
      expect((await store.read(id))!.sender).toBe('a@b.test');
      await store.remove(id);
      expect(await store.read(id)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('mailgate queue without a running gateway', () => {
  it('list, show, retry (held → pending) and delete change the files directly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relay-cli-'));
    try {
      const relay = (await import('../src/index.js')).default;
      const store = new QueueStore(join(dir, 'q'));
      await store.init();
      const id = newQueueId();
      await store.add(
        { version: 1, id, sender: '', created: Date.now(), nextAttempt: Date.now() + 3_600_000, attempts: 1, size: 20, bodyType: '7BIT', smtputf8: false, kind: 'message', recipients: [{ address: 'x@dest.test', domain: 'dest.test', status: 'held', attempts: 1, lastError: '550 gone' }] },
        Buffer.from('Subject: held one\r\n\r\nbody\r\n'),
      );
      const run = async (...args: string[]) => {
        let out = '';
        let err = '';
        const stream = (f: (s: string) => void) => ({ write: (s: string) => (f(s), true) }) as unknown as NodeJS.WritableStream;
        const code = await relay.commands!.queue!.run(args, {
          options: relayOptionsSchema.parse({ queueDir: './q' }),
          configDir: dir,
          config: {} as never,
          stdout: stream((s) => (out += s)),
          stderr: stream((s) => (err += s)),
        });
        return { code, out, err };
      };
      const list = await run('list');
      expect(list.out).toContain(`${id}!`);
      expect(list.out).toContain('H x@dest.test  (550 gone)');
      expect((await run('show', id)).out).toContain('Subject: held one');
      expect((await run('retry', id)).code).toBe(0);
      expect((await store.read(id))!.recipients[0]!.status).toBe('pending');
      expect((await run('delete', id)).code).toBe(0);
      expect(await store.read(id)).toBeUndefined();
      expect((await run('list')).out).toContain('Mail queue is empty');
      expect((await run('show', 'nope')).code).toBe(2);
      expect((await run('bogus')).code).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('routes and mxPort are looked up with names from DNS and addresses', () => {
  it('only configured keys are there: an MX named "constructor" or a domain "__proto__" finds nothing', () => {
    const options = relayOptionsSchema.parse({ mxPort: { 'mx1.dest.test': 2526 }, routes: { 'dest.test': { host: '127.0.0.1:2527' } } });
    expect(options.mxPort['mx1.dest.test']).toBe(2526);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(options.mxPort[name]).toBeUndefined();
      expect(options.routes[name]).toBeUndefined();
    }
  });
});
