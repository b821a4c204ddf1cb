/**
 * The whole content scan (default rules + Bayes bands, as the gateway runs them after
 * DATA) on the SpamAssassin public corpus: Bayes trained on every message outside the
 * fixed 1,000-message sample, the sample scored, and the result compared at the
 * plugin's default thresholds (tag 5, reject 15) with SpamAssassin 4.0.1 and rspamd 3.4
 * on the same sample (both with local tests only and no Bayes: ../shared/data/README.md).
 * There is no envelope here (no DNS lists, no SPF): these are the content checks alone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsResolver, silentLogger } from '@mailgate/core';
import { BayesFile } from '../src/bayes-file.js';
import { SpamChecks } from '../src/checks.js';
import { spamOptionsSchema, totalScore } from '../src/index.js';
import { corpusAvailable, trainOnCorpus, type TrainedCorpus } from './corpus-helpers.js';
import { SHARED_DATA } from './helpers.js';

const SA_SCORES = join(SHARED_DATA, 'sa-baseline/sa401-local-scores.jsonl');
const RSPAMD_SCORES = join(SHARED_DATA, 'sa-baseline/rspamd34-local-sample-scores.jsonl');
const available = corpusAvailable() && [SA_SCORES, RSPAMD_SCORES].every((f) => existsSync(f));
if (!available) console.warn(`e2e-corpus.test.ts: test data missing under ${SHARED_DATA}; skipped`);

interface Tally {
  spamTagged: number;
  hamTagged: number;
  spamRejected: number;
  hamRejected: number;
}

const tally = (): Tally => ({ spamTagged: 0, hamTagged: 0, spamRejected: 0, hamRejected: 0 });

function count(t: Tally, spam: boolean, score: number, tag: number, reject: number): void {
  if (score >= tag) t[spam ? 'spamTagged' : 'hamTagged']++;
  if (score >= reject) t[spam ? 'spamRejected' : 'hamRejected']++;
}

function line(name: string, t: Tally, tag: number, reject: number): string {
  const pc = (n: number) => `${((100 * n) / 500).toFixed(1)} %`;
  return `  ${name.padEnd(34)} >= ${String(tag).padEnd(2)}: spam ${t.spamTagged}/500 = ${pc(t.spamTagged)}, ham ${t.hamTagged}/500 = ${pc(t.hamTagged)};  >= ${reject}: spam ${pc(t.spamRejected)}, ham ${t.hamRejected}/500`;
}

describe.skipIf(!available)('the content scan on the SpamAssassin public corpus', () => {
  let corpus: TrainedCorpus | undefined;
  let dir = '';
  const sample = new Set<string>();

  beforeAll(async () => {
    corpus = await trainOnCorpus();
    dir = corpus.dir;
    for (const name of corpus.sample.keys()) sample.add(name);
  }, 120_000);
  afterAll(async () => {
    await corpus?.remove();
  });

  it('tags more spam than SpamAssassin and rspamd without Bayes, with fewer false positives', async () => {
    const options = spamOptionsSchema.parse({ bayes: { file: join(dir, 'bayes.db') } });
    const dns = new DnsResolver({ servers: ['127.0.0.1:9'] }); // no list is configured: never asked
    const bayes = await BayesFile.open(options.bayes!.file, { reloadInterval: Number.MAX_SAFE_INTEGER, log: silentLogger });
    const full = new SpamChecks(options, dns, silentLogger, bayes);
    const rulesOnly = new SpamChecks(spamOptionsSchema.parse({}), dns, silentLogger, undefined);
    const ours = tally();
    const ourRules = tally();
    const hamRules = new Map<string, number>();
    for (const name of [...sample].sort()) {
      const raw = await readFile(join(dir, name));
      const spam = name.startsWith('spam');
      const withBayes = await full.content(raw, { now: 'received' });
      const score = totalScore(withBayes.tests);
      count(ours, spam, score, 5, 15);
      if (!spam && score >= 5) for (const t of withBayes.tests) hamRules.set(t.name, (hamRules.get(t.name) ?? 0) + 1);
      count(ourRules, spam, totalScore((await rulesOnly.content(raw, { now: 'received' })).tests), 5, 15);
    }
    const sa = tally();
    for (const text of readFileSync(SA_SCORES, 'utf8').split('\n')) {
      if (!text) continue;
      const row = JSON.parse(text) as { group: string; file: string; label: number; score: number };
      if (sample.has(`${row.group}/${row.file}`)) count(sa, row.label === 1, row.score, 5, 15);
    }
    const rspamd = tally();
    for (const text of readFileSync(RSPAMD_SCORES, 'utf8').split('\n')) {
      if (!text) continue;
      const row = JSON.parse(text) as { group: string; file: string; label: number; score: number };
      if (sample.has(`${row.group}/${row.file}`)) count(rspamd, row.label === 1, row.score, 6, 15);
    }
    console.log(
      [
        'Sample of 500 spam + 500 ham (SpamAssassin public corpus), content checks only:',
        line('plugin-spam: rules + Bayes', ours, 5, 15),
        line('plugin-spam: rules only', ourRules, 5, 15),
        line('SpamAssassin 4.0.1 (no Bayes, -L)', sa, 5, 15),
        line('rspamd 3.4 (no Bayes, local)', rspamd, 6, 15),
        `  rules in our false positives: ${[...hamRules].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, c]) => `${n}×${c}`).join(', ')}`,
      ].join('\n'),
    );
    expect(sa.spamTagged).toBe(378);
    expect(sa.hamTagged).toBe(10);
    // Measured 438 and 1 (README). Pinned with a small margin for rule and tokenizer changes.
    expect(ours.spamTagged).toBeGreaterThanOrEqual(425);
    expect(ours.hamTagged).toBeLessThanOrEqual(3);
    expect(ours.hamRejected).toBe(0);
    expect(ours.spamTagged).toBeGreaterThan(sa.spamTagged);
    expect(ours.hamTagged).toBeLessThan(sa.hamTagged);
  }, 120_000);
});
