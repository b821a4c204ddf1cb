import { describe, expect, it } from 'vitest';
import { DEFAULT_COMBINE_PARAMETERS, chiSquareQ, fisherCombine, tokenProbability } from '../../src/bayes/combine.js';

describe('Robinson f(w)', () => {
  it('pulls rarely seen tokens toward x and uses class frequencies, not counts', () => {
    const p = DEFAULT_COMBINE_PARAMETERS;
    // Once in spam, never in ham, equal corpora: (s·x + n·p) / (s + n) = (0.5 + 1) / 2.
    expect(tokenProbability(1, 0, 100, 100, p)).toBeCloseTo(0.75, 12);
    expect(tokenProbability(100, 0, 100, 100, p)).toBeCloseTo(100.5 / 101, 12);
    expect(tokenProbability(0, 100, 100, 100, p)).toBeCloseTo(0.5 / 101, 12);
    // In 10 % of 100 spams and 10 % of 1000 hams: as likely either way, whatever the counts.
    expect(tokenProbability(10, 100, 100, 1000, p)).toBeCloseTo(0.5, 12);
    expect(tokenProbability(0, 0, 100, 100, p)).toBe(0.5);
    expect(tokenProbability(5, 5, 0, 0, p)).toBe(0.5);
  });
});

describe('chi-square and Fisher combining', () => {
  it('computes the chi-square upper tail for even degrees of freedom', () => {
    expect(chiSquareQ(0, 2)).toBe(1);
    expect(chiSquareQ(3, 2)).toBeCloseTo(Math.exp(-1.5), 12);
    // Reference values (scipy.stats.chi2.sf).
    expect(chiSquareQ(10, 10)).toBeCloseTo(0.44049, 4);
    expect(chiSquareQ(300, 300)).toBeCloseTo(0.48914, 4);
    expect(chiSquareQ(5000, 300)).toBe(0);
  });

  it('is 0.5 without evidence or with balanced evidence, and decisive with strong evidence', () => {
    expect(fisherCombine([])).toBe(0.5);
    expect(fisherCombine([0.99, 0.01])).toBeCloseTo(0.5, 12);
    expect(fisherCombine(Array(20).fill(0.99))).toBeGreaterThan(0.999);
    expect(fisherCombine(Array(20).fill(0.01))).toBeLessThan(0.001);
    expect(fisherCombine(Array(150).fill(0.9999))).toBeLessThanOrEqual(1);
    // Mildly spammy tokens give a mildly spammy verdict, not a certain one.
    const mild = fisherCombine(Array(3).fill(0.7));
    expect(mild).toBeGreaterThan(0.6);
    expect(mild).toBeLessThan(0.95);
  });
});
