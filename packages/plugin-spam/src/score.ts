/**
 * Points: what each check adds to a message's score, the total, and what the total
 * means. Names and default points follow SpamAssassin 4 (its score set with network
 * tests and Bayes on), so an admin's intuition and existing Sieve rules carry over.
 */

/** One check that fired, as listed in X-Spam-Status, X-Spam-Report and `mailgate spam check`. */
export interface SpamTest {
  /** A-Z, 0-9 and _ (SpamAssassin style), e.g. RCVD_IN_ZEN_EXAMPLE, BAYES_99, SPF_FAIL. */
  name: string;
  score: number;
  /** One line for people. */
  describe: string;
  /** For DNS list tests: the zone that listed (named in envelope refusals, like postscreen's). */
  list?: string;
}

/** What the gateway does with a message given its score. */
export type SpamAction = 'accept' | 'tag' | 'tempfail' | 'reject';

export interface Thresholds {
  tag: number;
  /** false: never reject. */
  reject: number | false;
  tempfail?: number | undefined;
}

export const SPF_RESULTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror'] as const;
export type SpfResultName = (typeof SPF_RESULTS)[number];

/** SpamAssassin's SPF_* points (50_scores.cf, net+Bayes set), rounded. temperror costs nothing: DNS trouble is not the sender's fault. */
export const DEFAULT_SPF_SCORES: Readonly<Record<SpfResultName, number>> = {
  pass: -0.001,
  fail: 0.919,
  softfail: 0.665,
  neutral: 0.652,
  none: 0.001,
  permerror: 0.01,
  temperror: 0,
};

/** SPF_HELO_* points: the HELO identity says less than the envelope sender. */
export const DEFAULT_SPF_HELO_SCORES: Readonly<Record<SpfResultName, number>> = {
  pass: -0.001,
  fail: 0.001,
  softfail: 0.732,
  neutral: 0.001,
  none: 0.001,
  permerror: 0.01,
  temperror: 0,
};

/**
 * DKIM points, SpamAssassin's: a valid signature says little about spam (spammers sign
 * too), a broken one a little more. DKIM_NONE (unsigned) is 0: most legitimate small
 * senders do not sign.
 */
export const DEFAULT_DKIM_SCORES = { valid: -0.1, validAuthor: -0.1, invalid: 0.1, none: 0 } as const;

/** Bayes bands: [name, lowest probability, highest probability (exclusive, except the last)]. */
export const BAYES_BANDS = [
  ['BAYES_00', 0, 0.01],
  ['BAYES_05', 0.01, 0.05],
  ['BAYES_20', 0.05, 0.2],
  ['BAYES_40', 0.2, 0.4],
  ['BAYES_50', 0.4, 0.6],
  ['BAYES_60', 0.6, 0.8],
  ['BAYES_80', 0.8, 0.95],
  ['BAYES_95', 0.95, 0.99],
  ['BAYES_99', 0.99, 1],
] as const;
export type BayesBand = (typeof BAYES_BANDS)[number][0] | 'BAYES_999';
export const BAYES_BAND_NAMES: readonly BayesBand[] = [...BAYES_BANDS.map((b) => b[0]), 'BAYES_999'];

/**
 * Bayes points. The ham side is SpamAssassin 4's; the spam side is higher than SA's
 * (BAYES_99 3.5, BAYES_999 0.2), closer to rspamd's BAYES_SPAM (up to 5.1): SA adds a
 * thousand rules on top of Bayes, this plugin a few dozen, so with SA's points a
 * trained Bayes could hardly ever tag on its own. Measured on the SpamAssassin public
 * corpus (README): tagged spam 37 % with SA's points, 88 % with these, ham tagged 0.2 %
 * either way. Bayes alone never reaches the default reject (15).
 */
export const DEFAULT_BAYES_SCORES: Readonly<Record<BayesBand, number>> = {
  BAYES_00: -1.9,
  BAYES_05: -0.5,
  BAYES_20: -0.001,
  BAYES_40: -0.001,
  BAYES_50: 0.8,
  BAYES_60: 1.5,
  BAYES_80: 2.5,
  BAYES_95: 3.5,
  BAYES_99: 4.5,
  BAYES_999: 0.5,
};

/** The tests for a Bayes spam probability (one band, plus BAYES_999 at 99.9 % and above). */
export function bayesTests(probability: number, scores: Readonly<Record<BayesBand, number>>): SpamTest[] {
  if (!Number.isFinite(probability)) return [];
  const p = Math.min(1, Math.max(0, probability));
  const percent = (x: number) => `${Math.round(x * 100)}`;
  const tests: SpamTest[] = [];
  for (const [name, low, high] of BAYES_BANDS) {
    if (p >= low && (p < high || high === 1)) {
      tests.push({ name, score: scores[name], describe: `Bayes spam probability is ${percent(low)} to ${percent(high)}% [score: ${p.toFixed(4)}]` });
      break;
    }
  }
  if (p >= 0.999) tests.push({ name: 'BAYES_999', score: scores.BAYES_999, describe: 'Bayes spam probability is 99.9 to 100%' });
  return tests;
}

/** The SPF test for one identity's result (SPF_FAIL, SPF_HELO_SOFTFAIL …). */
export function spfTest(result: string, identity: 'mailfrom' | 'helo', scores: Readonly<Record<SpfResultName, number>>, domain: string): SpamTest | undefined {
  if (!(SPF_RESULTS as readonly string[]).includes(result)) return undefined;
  const r = result as SpfResultName;
  const name = `SPF${identity === 'helo' ? '_HELO' : ''}_${r.toUpperCase()}`;
  const what = identity === 'helo' ? 'HELO' : 'envelope sender';
  const describe = DESCRIBE_SPF[r](what, domain);
  return { name, score: scores[r], describe };
}

const DESCRIBE_SPF: Record<SpfResultName, (what: string, domain: string) => string> = {
  pass: (what, d) => `SPF: ${what} domain ${d} authorizes the client`,
  fail: (what, d) => `SPF: ${what} domain ${d} does not authorize the client`,
  softfail: (what, d) => `SPF: ${what} domain ${d} does not designate the client (softfail)`,
  neutral: (what, d) => `SPF: ${what} domain ${d} says neither yes nor no (neutral)`,
  none: (what, d) => `SPF: ${what} domain ${d || '(none)'} has no SPF record`,
  permerror: (what, d) => `SPF: ${what} domain ${d} has a broken SPF record`,
  temperror: (what, d) => `SPF: ${what} domain ${d} could not be checked (DNS)`,
};

/** Sum of points, rounded to thousandths so 14.999999 does not escape a reject at 15. */
export function totalScore(tests: readonly SpamTest[]): number {
  let sum = 0;
  for (const t of tests) if (Number.isFinite(t.score)) sum += t.score;
  return Math.round(sum * 1000) / 1000;
}

export function decideAction(score: number, thresholds: Thresholds): SpamAction {
  if (thresholds.reject !== false && score >= thresholds.reject) return 'reject';
  if (thresholds.tempfail !== undefined && score >= thresholds.tempfail) return 'tempfail';
  if (score >= thresholds.tag) return 'tag';
  return 'accept';
}

/** A score as SpamAssassin prints it: one decimal. */
export function formatScore(score: number): string {
  const text = score.toFixed(1);
  return text === '-0.0' ? '0.0' : text;
}

/** A test name from free text (a zone, a list name): upper case, A-Z0-9_ only, at most 40 characters. */
export function testName(...parts: string[]): string {
  const name = parts
    .join('_')
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return name.slice(0, 40) || 'UNNAMED';
}
