/**
 * A bounded map whose entries expire. Eviction is least-recently-used: a Map keeps
 * insertion order, so a hit is re-inserted at the end and the first key is the oldest.
 * Time comes from the caller so tests can move it.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expires <= now) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Store for `ttlSeconds`; a TTL of 0 (or less) means "do not cache". */
  set(key: string, value: V, ttlSeconds: number, now: number): void {
    if (!(ttlSeconds > 0) || this.maxEntries <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expires: now + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
