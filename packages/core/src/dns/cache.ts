/**
 * A bounded map whose entries expire. Eviction is least-recently-used: a Map keeps
 * insertion order, so a hit is re-inserted at the end and the first key is the oldest.
 * Time comes from the caller so tests can move it.
 *
 * It is bounded twice. A count alone is not enough when the values are answers from
 * zones anyone can run: 10 000 entries of 60 KB TXT records are most of a gigabyte. So
 * each entry also carries an estimate of the memory it holds (the caller's `sizeOf`),
 * the total is kept under `maxBytes`, and a single value over `maxEntryBytes` is not
 * kept at all (it would only push out many small, useful entries).
 */
export interface TtlCacheLimits<V> {
  maxEntries: number;
  /** budget for the sum of `sizeOf` over all entries */
  maxBytes: number;
  /** values whose `sizeOf` is larger are not cached */
  maxEntryBytes: number;
  /** an estimate, in bytes, of the memory an entry holds (key included) */
  sizeOf: (key: string, value: V) => number;
}

interface Entry<V> {
  value: V;
  expires: number;
  bytes: number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private total = 0;

  constructor(private readonly limits: TtlCacheLimits<V>) {}

  get size(): number {
    return this.entries.size;
  }

  /** the estimated bytes held, always <= maxBytes */
  get bytes(): number {
    return this.total;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expires <= now) {
      this.total -= entry.bytes;
      return undefined;
    }
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Store for `ttlSeconds`; a TTL of 0 (or less) means "do not cache". */
  set(key: string, value: V, ttlSeconds: number, now: number): void {
    // an older value under this key is stale whether or not the new one is kept
    this.remove(key);
    if (!(ttlSeconds > 0) || this.limits.maxEntries <= 0) return;
    const bytes = this.limits.sizeOf(key, value);
    if (bytes > this.limits.maxEntryBytes || bytes > this.limits.maxBytes) return;
    this.entries.set(key, { value, expires: now + ttlSeconds * 1000, bytes });
    this.total += bytes;
    while (this.entries.size > this.limits.maxEntries || this.total > this.limits.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.total -= entry.bytes;
  }
}
