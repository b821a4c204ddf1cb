/** The triplet memory of the greylist: in-memory, bounded, oldest forgotten first. */
export interface GreylistTiming {
  delay: number;
  retryWindow: number;
  pass: number;
  maxEntries: number;
}

interface Entry {
  /** When the triplet was first seen. */
  first: number;
  /** Until when it passes without delay (0 while unconfirmed). */
  passUntil: number;
}

export class GreylistStore {
  // A Map iterates in insertion order, so re-inserting on use makes it an LRU.
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly timing: GreylistTiming) {}

  /** Milliseconds the client must still wait; 0 or less means pass. */
  check(key: string, now: number): number {
    const entry = this.entries.get(key);
    if (entry && entry.passUntil > now) return this.touch(key, { first: entry.first, passUntil: now + this.timing.pass });
    if (!entry || now - entry.first > this.timing.retryWindow) {
      this.touch(key, { first: now, passUntil: 0 });
      return this.timing.delay;
    }
    const wait = entry.first + this.timing.delay - now;
    if (wait <= 0) return this.touch(key, { first: entry.first, passUntil: now + this.timing.pass });
    return wait;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forget expired entries. */
  prune(now = Date.now()): void {
    for (const [key, entry] of this.entries) {
      const expired = entry.passUntil ? entry.passUntil <= now : now - entry.first > this.timing.retryWindow;
      if (expired) this.entries.delete(key);
    }
  }

  private touch(key: string, entry: Entry): number {
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.timing.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return 0;
  }
}
