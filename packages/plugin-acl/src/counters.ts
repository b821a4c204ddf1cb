/**
 * Counters for rate and concurrency limits, behind an interface so that several
 * gateway instances can later share them (Redis first, see DESIGN "Scale beyond one
 * machine"). Every method is async for that reason.
 *
 * Windows are fixed windows that start at a key's first event: the counter counts
 * events until `windowMs` after that event, then starts again from zero (what
 * Redis `INCR` + `PEXPIRE … NX` gives). A client can therefore get up to twice the
 * limit through across a window boundary; limits are meant against floods, not to
 * the message.
 */
export interface CounterStore {
  /**
   * Count one event (or `by`) on `key`, whose window is `windowMs` long, and return
   * the count in the current window including this event. `by` may be negative: the
   * ACL counts a failed login before checking the password (a reservation, so that
   * parallel sessions cannot overtake the limit) and gives it back with `by: -1` when
   * the login succeeds. Giving back to a window that has expired should not open a new
   * one (the in-memory store returns 0 and keeps nothing); a store that cannot tell
   * (Redis `INCRBY` + `PEXPIRE … NX`) at worst starts the next window one lower.
   */
  increment(key: string, windowMs: number, by?: number): Promise<number>;
  /** The count of `key` in its current window (0 when none or expired). */
  get(key: string): Promise<number>;
  /**
   * Take one of `limit` concurrency slots of `key` (e.g. open connections of one IP).
   * Resolves false, taking nothing, when all are taken. `ttlMs` bounds how long a
   * slot may be held in a shared store if its holder dies without releasing it;
   * the in-memory store ignores it.
   */
  acquire(key: string, limit: number, ttlMs?: number): Promise<boolean>;
  /** Give back a slot taken with `acquire`. */
  release(key: string): Promise<void>;
  /** Release resources (connections to a shared store). */
  close?(): Promise<void>;
}

export function isCounterStore(value: unknown): value is CounterStore {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['increment', 'get', 'acquire', 'release'].every((m) => typeof v[m] === 'function');
}

export interface MemoryCounterStoreOptions {
  /**
   * Most window counters kept (default 100 000). Past it, expired counters are swept,
   * then the oldest are dropped: memory stays bounded whatever a client sends (many
   * sender addresses), at the price of forgetting the oldest counts.
   */
  maxKeys?: number;
  /** Clock, ms since the epoch (tests inject one). */
  now?: () => number;
}

interface WindowCounter {
  count: number;
  expires: number;
}

/** The in-process CounterStore: no timers, bounded memory, expiry on access and on sweep. */
export class MemoryCounterStore implements CounterStore {
  private readonly counters = new Map<string, WindowCounter>();
  private readonly slots = new Map<string, number>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: MemoryCounterStoreOptions = {}) {
    this.maxKeys = Math.max(1, Math.floor(options.maxKeys ?? 100_000));
    this.now = options.now ?? Date.now;
  }

  /** Window counters currently held (for tests and metrics). */
  get size(): number {
    return this.counters.size;
  }

  async increment(key: string, windowMs: number, by = 1): Promise<number> {
    const now = this.now();
    let counter = this.counters.get(key);
    if (by < 0 && (!counter || counter.expires <= now)) {
      // Giving back to a window that is over: nothing to give back to.
      if (counter) this.counters.delete(key);
      return 0;
    }
    if (!counter || counter.expires <= now) {
      // Re-insert so the Map's order stays "oldest window first".
      if (counter) this.counters.delete(key);
      counter = { count: 0, expires: now + Math.max(1, windowMs) };
      this.counters.set(key, counter);
      if (this.counters.size > this.maxKeys) this.trim(now);
    }
    counter.count += by;
    return counter.count;
  }

  async get(key: string): Promise<number> {
    const counter = this.counters.get(key);
    if (!counter) return 0;
    if (counter.expires <= this.now()) {
      this.counters.delete(key);
      return 0;
    }
    return counter.count;
  }

  async acquire(key: string, limit: number): Promise<boolean> {
    const held = this.slots.get(key) ?? 0;
    if (held >= limit) return false;
    this.slots.set(key, held + 1);
    return true;
  }

  async release(key: string): Promise<void> {
    const held = (this.slots.get(key) ?? 0) - 1;
    if (held <= 0) this.slots.delete(key);
    else this.slots.set(key, held);
  }

  /** Slots held on `key` (for tests and metrics). */
  held(key: string): number {
    return this.slots.get(key) ?? 0;
  }

  /** Sweep expired counters; if still over the bound, drop the oldest down to 90 % of it. */
  private trim(now: number): void {
    for (const [key, counter] of this.counters) {
      if (counter.expires <= now) this.counters.delete(key);
    }
    // Always leave room for 10 % more keys, so the O(n) sweep runs once per maxKeys/10 new keys at most.
    const target = Math.floor(this.maxKeys * 0.9);
    if (this.counters.size <= target) return;
    for (const key of this.counters.keys()) {
      if (this.counters.size <= target) break;
      this.counters.delete(key);
    }
  }
}
