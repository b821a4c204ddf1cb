/**
 * Concurrency slots against hook ordering, driving the plugin's taps directly: whatever
 * order the core runs `connect` and `disconnect` in, and however slow the CounterStore,
 * a slot taken is given back exactly once.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger, type Session } from '@mailgate/core';
import acl, { aclOptionsSchema, MemoryCounterStore, type CounterStore } from '../src/index.js';

type Tap = (...args: unknown[]) => unknown;

async function setupAcl(store: CounterStore, connectionsPerIp: number): Promise<{ connect: Tap; disconnect: Tap; close: () => Promise<void> }> {
  const taps = new Map<string, Tap>();
  const closers: Array<() => void | Promise<void>> = [];
  const context = {
    name: acl.name,
    options: aclOptionsSchema.parse({ counterStore: store, limits: { connectionsPerIp } }),
    hooks: {},
    tap: (hook: string, fn: Tap) => void taps.set(hook, fn),
    gateway: { hostname: 'test', config: { limits: { ipv6PrefixLength: 64 } }, dns: {}, addLocalDomain: () => undefined, isLocalDomain: () => false },
    log: silentLogger,
    configDir: process.cwd(),
    onClose: (fn: () => void | Promise<void>) => void closers.push(fn),
    onListen: () => undefined,
  };
  await acl.setup(context as unknown as Parameters<typeof acl.setup>[0]);
  return {
    connect: taps.get('connect')!,
    disconnect: taps.get('disconnect')!,
    close: async () => {
      for (const fn of closers) await fn();
    },
  };
}

let nextId = 0;
const session = (): Session => ({ id: `s${nextId++}`, remoteAddress: '192.0.2.7' }) as unknown as Session;
const KEY = 'acl:conn:192.0.2.7';
const tick = () => new Promise((r) => setTimeout(r, 5));

/** A store whose acquire takes a while (a round trip to a shared store). */
function slowStore(inner: MemoryCounterStore): CounterStore {
  return {
    increment: (k, w, by) => inner.increment(k, w, by),
    get: (k) => inner.get(k),
    acquire: async (k, limit) => {
      await tick();
      return inner.acquire(k, limit);
    },
    release: (k) => inner.release(k),
  };
}

describe('connectionsPerIp slots and hook ordering', () => {
  it('a disconnect that overtakes the connect tap (acquire still in flight) releases the slot once it is taken', async () => {
    const inner = new MemoryCounterStore();
    const plugin = await setupAcl(slowStore(inner), 2);
    for (let i = 0; i < 10; i++) {
      const s = session();
      const connecting = plugin.connect(s);
      await plugin.disconnect(s); // the core did not wait for the connect tap
      await connecting;
      expect(inner.held(KEY)).toBe(0);
    }
    await plugin.close();
  });

  it('a disconnect that comes before the connect tap ran at all: connect takes nothing', async () => {
    const inner = new MemoryCounterStore();
    const plugin = await setupAcl(slowStore(inner), 1);
    const s = session();
    await plugin.disconnect(s);
    expect(await plugin.connect(s)).toBeUndefined();
    expect(inner.held(KEY)).toBe(0);
  });

  it('in the usual order the slot is held for the session and released once, even on a repeated disconnect', async () => {
    const inner = new MemoryCounterStore();
    const plugin = await setupAcl(slowStore(inner), 2);
    const [a, b, c] = [session(), session(), session()];
    expect(await plugin.connect(a)).toBeUndefined();
    expect(await plugin.connect(b)).toBeUndefined();
    expect(inner.held(KEY)).toBe(2);
    expect(await plugin.connect(c)).toMatchObject({ kind: 'disconnect' });
    await plugin.disconnect(c); // refused at connect: held nothing, releases nothing
    expect(inner.held(KEY)).toBe(2);
    await plugin.disconnect(a);
    await plugin.disconnect(a);
    expect(inner.held(KEY)).toBe(1);
    await plugin.disconnect(b);
    expect(inner.held(KEY)).toBe(0);
  });
});
