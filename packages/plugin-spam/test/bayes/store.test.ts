import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BayesStore, tokenize } from '../../src/bayes/index.js';
import { makeContent, syntheticMessage } from './messages.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailgate-bayes-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A store trained on `count` synthetic spams and hams, answering from 5 of each. */
async function trainedStore(count = 20, options: Parameters<typeof BayesStore.open>[1] = {}): Promise<BayesStore> {
  const store = await BayesStore.open(join(dir, 'bayes.db'), { minSpam: 5, minHam: 5, ...options });
  for (let n = 0; n < count; n++) {
    store.learn(syntheticMessage('spam', n), 'spam');
    store.learn(syntheticMessage('ham', n), 'ham');
  }
  return store;
}

describe('BayesStore learning', () => {
  it('answers nothing until minSpam and minHam messages were learned (200 each by default)', async () => {
    const store = await BayesStore.open(join(dir, 'bayes.db'));
    for (let n = 0; n < 199; n++) {
      store.learn(syntheticMessage('spam', n), 'spam');
      store.learn(syntheticMessage('ham', n), 'ham');
    }
    expect(store.classify(syntheticMessage('spam', 1000))).toBeUndefined();
    store.learn(syntheticMessage('spam', 199), 'spam');
    expect(store.classify(syntheticMessage('spam', 1000))).toBeUndefined();
    store.learn(syntheticMessage('ham', 199), 'ham');
    expect(store.classify(syntheticMessage('spam', 1000))?.probability).toBeGreaterThan(0.9);
  });

  it('does not count the same message twice, moves it when relearned, and unlearns it', async () => {
    const store = await BayesStore.open(join(dir, 'bayes.db'));
    const message = syntheticMessage('spam', 1);
    const tokens = tokenize(message).length;
    expect(store.learn(message, 'spam')).toBe('learned');
    expect(store.learn(message, 'spam')).toBe('unchanged');
    // A re-parse of the same message is the same message.
    expect(store.learn({ ...message, headers: [...message.headers] }, 'spam')).toBe('unchanged');
    expect([store.spamCount, store.hamCount, store.tokenCount]).toEqual([1, 0, tokens]);

    expect(store.learn(message, 'ham')).toBe('relearned');
    expect([store.spamCount, store.hamCount, store.tokenCount]).toEqual([0, 1, tokens]);

    expect(store.unlearn(message)).toBe(true);
    expect(store.unlearn(message)).toBe(false);
    expect([store.spamCount, store.hamCount, store.tokenCount]).toEqual([0, 0, 0]);
  });

  it('classifies by the learned evidence, and reports the tokens used, most significant first', async () => {
    const store = await trainedStore();
    const spam = store.classify(syntheticMessage('spam', 500))!;
    const ham = store.classify(syntheticMessage('ham', 500))!;
    expect(spam.probability).toBeGreaterThan(0.99);
    expect(ham.probability).toBeLessThan(0.01);
    expect(spam.tokens.map((t) => t.token)).toContain('viagra');
    expect(spam.tokens.map((t) => t.token)).toContain('url:offers.example.biz');
    const strengths = spam.tokens.map((t) => Math.abs(t.probability - 0.5));
    expect(strengths).toEqual([...strengths].sort((a, b) => b - a));
    expect(strengths.every((s) => s > 0.1)).toBe(true);

    const unknown = store.classify(makeContent({ subject: 'zzz', from: 'x', text: 'nothing known here' }))!;
    expect(unknown).toEqual({ probability: 0.5, tokens: [] });
  });

  it('uses at most maxDiscriminators tokens', async () => {
    const store = await trainedStore(20, { maxDiscriminators: 3 });
    expect(store.classify(syntheticMessage('spam', 500))!.tokens).toHaveLength(3);
  });

  it('rejects bad options', async () => {
    await expect(BayesStore.open(join(dir, 'x'), { minSpam: -1 })).rejects.toThrow();
    await expect(BayesStore.open(join(dir, 'x'), { assumedProbability: 1 })).rejects.toThrow();
  });
});

describe('BayesStore persistence', () => {
  it('opens a store that does not exist yet as empty', async () => {
    const store = await BayesStore.open(join(dir, 'missing', 'bayes.db'));
    expect([store.spamCount, store.hamCount, store.tokenCount]).toEqual([0, 0, 0]);
    // Its directory does not exist either: saving says which file failed.
    await expect(store.save()).rejects.toThrow(join(dir, 'missing', 'bayes.db'));
  });

  it('saves atomically and loads the same counts, seen messages and verdicts', async () => {
    const store = await trainedStore();
    const odd = makeContent({
      subject: 'quote"d back\\slash tab\there emoji😀 "leading',
      from: 'Odd <odd@example.com>',
      text: '"leading-quote café naïve 日本語テキスト',
      extraHeaders: [['X-Mailer', 'Tab\tMailer\u0000 9.1']],
    });
    store.learn(odd, 'ham');
    await store.save();
    expect(await readdir(dir)).toEqual(['bayes.db']);

    const loaded = await BayesStore.open(join(dir, 'bayes.db'), { minSpam: 5, minHam: 5 });
    expect([loaded.spamCount, loaded.hamCount, loaded.tokenCount]).toEqual([store.spamCount, store.hamCount, store.tokenCount]);
    expect(loaded.learn(odd, 'ham')).toBe('unchanged');
    expect(loaded.learn(syntheticMessage('spam', 3), 'spam')).toBe('unchanged');
    for (const probe of [syntheticMessage('spam', 77), syntheticMessage('ham', 77), odd]) {
      expect(loaded.classify(probe)).toEqual(store.classify(probe));
    }
    const text = await readFile(join(dir, 'bayes.db'), 'utf8');
    expect(text.startsWith('mailgate-bayes 1 20 21 ')).toBe(true);
  });

  it('round-trips tokens with quotes, backslashes and surrogate pairs exactly', async () => {
    const store = await BayesStore.open(join(dir, 'bayes.db'), { minSpam: 1, minHam: 1 });
    const odd = makeContent({ subject: 'a"b c\\d 😀😀😀 "start', text: '"quoted\\word 😀emoji' });
    store.learn(odd, 'spam');
    await store.save();
    const loaded = await BayesStore.open(join(dir, 'bayes.db'));
    expect(loaded.tokenCount).toBe(tokenize(odd).length);
    expect(loaded.unlearn(odd)).toBe(true);
    expect(loaded.tokenCount).toBe(0);
  });

  it('serializes concurrent saves and leaves no temporary files', async () => {
    const store = await trainedStore(5);
    await Promise.all([store.save(), store.save(), store.save()]);
    expect(await readdir(dir)).toEqual(['bayes.db']);
    await expect(BayesStore.open(join(dir, 'bayes.db'))).resolves.toBeInstanceOf(BayesStore);
  });

  it('refuses a corrupt or truncated file with an error naming it', async () => {
    const path = join(dir, 'bayes.db');
    const store = await trainedStore(5);
    await store.save();
    const good = await readFile(path, 'utf8');
    const lines = good.split('\n');
    const corruptions = [
      'garbage that is not a store\n',
      '',
      good.replace('mailgate-bayes 1', 'mailgate-bayes 9'),
      lines.slice(0, -3).join('\n') + '\n', // truncated
      good + 'extra line\n',
      good.replace(/\n(\d+)\t/, '\nx$1\t'), // a count that is not a number
      good.replace(/\t[sh]\n/, '\tq\n'), // a seen record with a bad label
    ];
    for (const corrupt of corruptions) {
      await writeFile(path, corrupt);
      await expect(BayesStore.open(path)).rejects.toThrow(path);
    }
    await writeFile(path, good);
    await expect(BayesStore.open(path)).resolves.toBeInstanceOf(BayesStore);
  });

  it('prunes to maxTokens on save, dropping rare and old tokens first', async () => {
    let now = Date.UTC(2025, 0, 1);
    // Old messages, each with words of its own; a month later newer ones; the "common" words are in all of them
    // (enough of them that learning alone, which prunes only past 1.5 × maxTokens, does not prune).
    const common = Array.from({ length: 40 }, (_, i) => `common${i}`).join(' ');
    const old = Array.from({ length: 10 }, (_, n) => makeContent({ from: 'x', text: `${common} oldonly${n}a oldonly${n}b oldonly${n}c` }));
    const recent = Array.from({ length: 10 }, (_, n) => makeContent({ from: 'x', text: `${common} newonly${n}a newonly${n}b newonly${n}c` }));
    const all = new Set([...old, ...recent].flatMap((m) => tokenize(m)));
    // Room for everything but the 30 old single-message words.
    const maxTokens = all.size - 30;
    const store = await BayesStore.open(join(dir, 'bayes.db'), { minSpam: 1, minHam: 1, maxTokens, now: () => now });
    for (const message of old) store.learn(message, 'ham');
    now += 30 * 86_400_000;
    for (const message of recent) store.learn(message, 'spam');
    expect(store.tokenCount).toBe(all.size);
    await store.save();
    expect(store.tokenCount).toBe(maxTokens);
    const loaded = await BayesStore.open(join(dir, 'bayes.db'), { minSpam: 1, minHam: 1 });
    expect(loaded.tokenCount).toBe(maxTokens);
    const used = loaded.classify(makeContent({ from: 'x', text: 'common1 newonly3a oldonly3a' }))!.tokens.map((t) => t.token);
    expect(used).toContain('newonly3a');
    expect(used).not.toContain('oldonly3a');
    // The common words are in every message: kept although first seen with the old ones.
    expect(loaded.unlearn(old[0]!)).toBe(true);
    expect(loaded.tokenCount).toBe(maxTokens);
  });

  it('bounds memory while learning between saves', async () => {
    const store = await BayesStore.open(join(dir, 'bayes.db'), { maxTokens: 100 });
    for (let n = 0; n < 200; n++) store.learn(makeContent({ from: 'x', text: `w${n}a w${n}b w${n}c w${n}d` }), 'ham');
    expect(store.tokenCount).toBeLessThanOrEqual(150);
  });
});
