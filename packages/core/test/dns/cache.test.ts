import { describe, expect, it } from 'vitest';
import { TtlCache, type TtlCacheLimits } from '../../src/dns/cache.js';

/** a cache of strings whose size is their length, so byte arithmetic is easy to follow */
function cache(limits: Partial<TtlCacheLimits<string>> = {}): TtlCache<string> {
  return new TtlCache<string>({ maxEntries: 100, maxBytes: 1000, maxEntryBytes: 1000, sizeOf: (_key, v) => v.length, ...limits });
}

describe('TtlCache', () => {
  it('expires entries and evicts the least recently used', () => {
    const c = cache({ maxEntries: 2 });
    c.set('a', 'A', 10, 0);
    c.set('b', 'B', 10, 0);
    expect(c.get('a', 9_999)).toBe('A');
    c.set('c', 'C', 10, 0); // evicts b, the least recently used
    expect(c.get('b', 0)).toBeUndefined();
    expect(c.get('a', 10_000)).toBeUndefined(); // expired
    expect(c.size).toBe(1);
    expect(c.bytes).toBe(1);
    c.set('z', 'Z', 0, 0); // TTL 0: not cached
    expect(c.get('z', 0)).toBeUndefined();
  });

  it('keeps the estimated bytes under the budget, evicting the least recently used', () => {
    const c = cache({ maxBytes: 250 });
    c.set('a', 'a'.repeat(100), 10, 0);
    c.set('b', 'b'.repeat(100), 10, 0);
    expect(c.bytes).toBe(200);
    c.get('a', 0); // a is now the most recent
    c.set('c', 'c'.repeat(100), 10, 0); // 300 > 250: b goes
    expect(c.bytes).toBe(200);
    expect(c.get('b', 0)).toBeUndefined();
    expect(c.get('a', 0)).toBe('a'.repeat(100));
    expect(c.get('c', 0)).toBe('c'.repeat(100));
    // one big value pushes out as many as it takes
    c.set('d', 'd'.repeat(240), 10, 0);
    expect([c.size, c.bytes]).toEqual([1, 240]);
  });

  it('does not keep a value over maxEntryBytes, and drops the one it would replace', () => {
    const c = cache({ maxEntryBytes: 50 });
    c.set('small', 's'.repeat(10), 10, 0);
    c.set('big', 'b'.repeat(51), 10, 0);
    expect(c.get('big', 0)).toBeUndefined();
    expect([c.size, c.bytes]).toEqual([1, 10]);
    // a key whose new answer is too big must not go on serving the old one
    c.set('small', 'x'.repeat(51), 10, 0);
    expect(c.get('small', 0)).toBeUndefined();
    expect([c.size, c.bytes]).toEqual([0, 0]);
  });

  it('counts bytes back when an entry is replaced, expires or is cleared', () => {
    const c = cache();
    c.set('a', 'a'.repeat(30), 10, 0);
    c.set('a', 'a'.repeat(20), 10, 0);
    expect(c.bytes).toBe(20);
    c.set('b', 'b'.repeat(5), 1, 0);
    expect(c.get('b', 1_000)).toBeUndefined(); // expired: removed and counted back
    expect(c.bytes).toBe(20);
    c.clear();
    expect([c.size, c.bytes]).toEqual([0, 0]);
  });
});
