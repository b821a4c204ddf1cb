/**
 * The trainable Bayesian classifier (SpamAssassin Bayes / SpamBayes style).
 *
 *   const store = await BayesStore.open('/var/lib/mailgate/bayes.db');
 *   store.learn(await parseContent(raw), 'spam');
 *   await store.save();
 *   const verdict = store.classify(content); // undefined until 200 spams and 200 hams are learned
 *   if (verdict && verdict.probability >= 0.9) { ... }
 */
export {
  BayesStore,
  bayesOptionsSchema,
  type BayesOptions,
  type Classification,
  type LearnOutcome,
  type TokenEvidence,
} from './store.js';
export type { Label } from './store-file.js';
export { tokenize, type TokenizeOptions } from './tokenize.js';
export { messageDigest } from './digest.js';
