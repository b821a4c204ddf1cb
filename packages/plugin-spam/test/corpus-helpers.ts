/**
 * The SpamAssassin public corpus for the evaluation tests: extracted to a temporary
 * folder, a Bayes store trained on every message outside the fixed 500 + 500 sample
 * (files in sorted order, so the numbers are the same on every run), the sample left out.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BayesStore, parseContent } from '../src/index.js';
import { CORPUS_TARBALL, SHARED_DATA } from './helpers.js';

export const SAMPLE_LIST = join(SHARED_DATA, 'sa-baseline/sample-500spam-500ham-seed42.txt');

export interface TrainedCorpus {
  /** where the corpus was extracted: `<group>/<file>` below it */
  dir: string;
  /** trained on every message outside the sample, saved as `<dir>/bayes.db` */
  store: BayesStore;
  /** the held-out sample: `<group>/<file>` → its label */
  sample: Map<string, 'spam' | 'ham'>;
  /** messages read, and how many of them the store learned */
  read: number;
  learned: number;
  remove(): Promise<void>;
}

export function corpusAvailable(): boolean {
  return existsSync(CORPUS_TARBALL) && existsSync(SAMPLE_LIST);
}

export async function trainOnCorpus(): Promise<TrainedCorpus> {
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-sa-corpus-'));
  execFileSync('tar', ['xzf', CORPUS_TARBALL, '-C', dir]);
  const held = new Set(readFileSync(SAMPLE_LIST, 'utf8').split('\n').filter(Boolean));
  const store = await BayesStore.open(join(dir, 'bayes.db'));
  const sample = new Map<string, 'spam' | 'ham'>();
  let read = 0;
  let learned = 0;
  for (const group of readdirSync(dir).sort()) {
    if (!group.includes('spam') && !group.includes('ham')) continue;
    const label = group.startsWith('spam') ? 'spam' : 'ham';
    for (const file of readdirSync(join(dir, group)).sort()) {
      read++;
      const name = `${group}/${file}`;
      if (held.has(name)) sample.set(name, label);
      else if (store.learn(await parseContent(await readFile(join(dir, name))), label) !== 'unchanged') learned++;
    }
  }
  await store.save();
  return { dir, store, sample, read, learned, remove: () => rm(dir, { recursive: true, force: true }) };
}
