/**
 * The arithmetic of the classifier, as in SpamBayes and SpamAssassin's Bayes:
 *
 * - Gary Robinson's f(w): a token's spam probability, pulled toward `x` when it was
 *   seen in few messages, so that one sighting does not make a token decisive:
 *   f(w) = (s·x + n·p(w)) / (s + n), with p(w) from the per-class frequencies and
 *   n the number of messages that had the token.
 * - Fisher's method: the most significant tokens' f(w) are combined twice, as
 *   evidence for spam and for ham, with the inverse chi-square, and the result is
 *   (1 + S − H) / 2. It gives 0.5 ("unsure") when the evidence is weak or conflicting,
 *   and is near 0 or 1 only when it is strong, which is what thresholds need.
 */

export interface CombineParameters {
  /** Robinson's s: how many messages' worth of weight the prior `x` has (default 1). */
  strength: number;
  /** Robinson's x: the probability of a token seen too little to tell (default 0.5). */
  assumedProbability: number;
  /** Tokens whose |f(w) − 0.5| is not above this are ignored (default 0.1). */
  minimumDeviation: number;
  /** Most tokens combined, the most significant first (default 150). */
  maxDiscriminators: number;
}

export const DEFAULT_COMBINE_PARAMETERS: CombineParameters = {
  strength: 1,
  assumedProbability: 0.5,
  minimumDeviation: 0.1,
  maxDiscriminators: 150,
};

/** Robinson's f(w) for a token seen in `spam` of `spamTotal` spams and `ham` of `hamTotal` hams. */
export function tokenProbability(
  spam: number,
  ham: number,
  spamTotal: number,
  hamTotal: number,
  parameters: CombineParameters,
): number {
  // Frequencies, not counts: a corpus with more ham than spam must not make every token hammy.
  const spamRatio = spamTotal > 0 ? Math.min(spam / spamTotal, 1) : 0;
  const hamRatio = hamTotal > 0 ? Math.min(ham / hamTotal, 1) : 0;
  if (spamRatio + hamRatio === 0) return parameters.assumedProbability;
  const p = spamRatio / (spamRatio + hamRatio);
  const n = spam + ham;
  const s = parameters.strength;
  return (s * parameters.assumedProbability + n * p) / (s + n);
}

/**
 * The upper tail of the chi-square distribution with `degrees` (even) degrees of
 * freedom at `x2`, by the series of the Poisson sum (exact for even degrees).
 */
export function chiSquareQ(x2: number, degrees: number): number {
  const m = x2 / 2;
  let term = Math.exp(-m);
  let sum = term;
  for (let i = 1; i < degrees / 2; i++) {
    term *= m / i;
    sum += term;
  }
  return Math.min(sum, 1);
}

/** Fisher-combine token probabilities into one spam probability (0.5 for none). */
export function fisherCombine(probabilities: readonly number[]): number {
  const n = probabilities.length;
  if (n === 0) return 0.5;
  let hamLogs = 0;
  let spamLogs = 0;
  for (const f of probabilities) {
    // f(w) is never exactly 0 or 1 with s > 0; the clamp protects against s = 0.
    const clamped = Math.min(Math.max(f, 1e-6), 1 - 1e-6);
    hamLogs += Math.log(clamped);
    spamLogs += Math.log(1 - clamped);
  }
  // Small f(w) make Σ ln f(w) very negative, so the chi-square tail is tiny and the
  // evidence for ham near 1; Σ ln(1 − f(w)) does the same for spam.
  const hamEvidence = 1 - chiSquareQ(-2 * hamLogs, 2 * n);
  const spamEvidence = 1 - chiSquareQ(-2 * spamLogs, 2 * n);
  return (1 + spamEvidence - hamEvidence) / 2;
}
