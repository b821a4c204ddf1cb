/**
 * Thresholds an admin can get wrong in a way that refuses all mail, refused before any
 * port opens with the key named.
 */
import { describe, expect, it } from 'vitest';
import { spamOptionsSchema } from '../src/index.js';

function issuesOf(input: unknown): Array<{ path: string; message: string }> {
  const result = spamOptionsSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('thresholds', () => {
  it('refuse a reject threshold of 0 or less: a message on which nothing fired (score 0) would be refused', () => {
    // tag below it keeps "reject > tag" satisfied: that check alone let these through.
    for (const reject of [0, -5]) {
      const issues = issuesOf({ tag: -10, reject });
      expect(issues).toContainEqual({ path: 'reject', message: expect.stringMatching(/greater than 0/) });
    }
  });

  it('refuse a tempfail threshold of 0 or less, for the same reason', () => {
    const issues = issuesOf({ tag: -10, tempfail: 0 });
    expect(issues).toContainEqual({ path: 'tempfail', message: expect.stringMatching(/greater than 0/) });
  });

  it('still accept the documented settings, a negative tag, and reject: false', () => {
    expect(issuesOf({ tag: 5, tempfail: 10, reject: 15 })).toEqual([]);
    expect(issuesOf({ tag: -1 })).toEqual([]);
    expect(issuesOf({ reject: false, tempfail: 8 })).toEqual([]);
    expect(issuesOf({ tag: 0.5, reject: 0.6 })).toEqual([]);
  });

  it('name the key of every threshold mistake', () => {
    expect(issuesOf({ tag: 'five' }).map((i) => i.path)).toEqual(['tag']);
    expect(issuesOf({ reject: 'never' }).map((i) => i.path)).toEqual(['reject']);
    expect(issuesOf({ tag: 20 }).map((i) => i.path)).toEqual(['reject']);
    expect(issuesOf({ tempfail: 20 }).map((i) => i.path)).toEqual(['tempfail']);
  });
});
