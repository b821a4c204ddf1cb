/**
 * The trainable classifier: token counts learned from messages an administrator (or
 * auto-learning) labelled, and the Robinson/Fisher classification over them.
 *
 * Everything but open() and save() is synchronous and in memory; the caller decides
 * when to save (after a batch of learning, on a timer, at shutdown). One process owns
 * a store file: two processes saving the same path keep only the last one's counts.
 */
import { z } from 'zod';
import type { MessageContent } from '../content.js';
import { DEFAULT_COMBINE_PARAMETERS, fisherCombine, tokenProbability, type CombineParameters } from './combine.js';
import { messageDigest } from './digest.js';
import { readStoreFile, serializeStore, writeFileAtomically, type Label, type StoreData } from './store-file.js';
import { tokenize, type TokenizeOptions } from './tokenize.js';

export const bayesOptionsSchema = z
  .object({
    /** Spams that must have been learned before classify() answers (SpamAssassin: 200). */
    minSpam: z.number().int().nonnegative().default(200),
    /** Hams that must have been learned before classify() answers (SpamAssassin: 200). */
    minHam: z.number().int().nonnegative().default(200),
    /** Tokens kept; past it save() drops the rarest, least recently used (SpamAssassin's bayes_expiry_max_db_size). */
    maxTokens: z.number().int().positive().default(150_000),
    /** Learned-message digests kept, oldest dropped first; a message dropped from here can be counted twice. */
    maxSeen: z.number().int().positive().default(200_000),
    strength: z.number().positive().default(DEFAULT_COMBINE_PARAMETERS.strength),
    assumedProbability: z.number().gt(0).lt(1).default(DEFAULT_COMBINE_PARAMETERS.assumedProbability),
    minimumDeviation: z.number().min(0).lt(0.5).default(DEFAULT_COMBINE_PARAMETERS.minimumDeviation),
    maxDiscriminators: z.number().int().positive().default(DEFAULT_COMBINE_PARAMETERS.maxDiscriminators),
    maxTokensPerMessage: z.number().int().positive().optional(),
    maxTextChars: z.number().int().positive().optional(),
  })
  .strict();

export type BayesOptions = z.input<typeof bayesOptionsSchema> & {
  /** Clock in ms since the epoch (tests inject one); tokens remember the day they were last used. */
  now?: () => number;
};

export interface TokenEvidence {
  token: string;
  /** Robinson's f(w): the token's own spam probability. */
  probability: number;
}

export interface Classification {
  /** The message's spam probability, 0..1 (0.5 = no evidence either way). */
  probability: number;
  /** The tokens that were combined, most significant first (for reports and headers). */
  tokens: TokenEvidence[];
}

/** What learn() did: counted the message, moved it from the other class, or nothing (already learned so). */
export type LearnOutcome = 'learned' | 'relearned' | 'unchanged';

const DAY_MS = 86_400_000;

export class BayesStore {
  private readonly combine: CombineParameters;
  private readonly tokenizeOptions: TokenizeOptions;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    /** The file this store is saved to. */
    readonly path: string,
    private readonly data: StoreData,
    private readonly options: z.output<typeof bayesOptionsSchema>,
    private readonly now: () => number,
  ) {
    this.combine = {
      strength: options.strength,
      assumedProbability: options.assumedProbability,
      minimumDeviation: options.minimumDeviation,
      maxDiscriminators: options.maxDiscriminators,
    };
    this.tokenizeOptions = { maxTokens: options.maxTokensPerMessage, maxTextChars: options.maxTextChars };
  }

  /**
   * Load the store at `path`; a file that does not exist yet is an empty store (created
   * by the first save()). Rejects with an Error naming the file when it is unreadable or
   * corrupt, and with a ZodError for bad options.
   */
  static async open(path: string, options: BayesOptions = {}): Promise<BayesStore> {
    const { now = Date.now, ...rest } = options;
    const parsed = bayesOptionsSchema.parse(rest);
    return new BayesStore(path, await readStoreFile(path), parsed, now);
  }

  /** Spam messages learned. */
  get spamCount(): number {
    return this.data.spamMessages;
  }

  /** Ham messages learned. */
  get hamCount(): number {
    return this.data.hamMessages;
  }

  /** Distinct tokens known. */
  get tokenCount(): number {
    return this.data.tokens.size;
  }

  /** Count a message as spam or ham. A message already learned with the same label is not counted again. */
  learn(content: MessageContent, label: Label): LearnOutcome {
    const digest = messageDigest(content);
    const previous = this.data.seen.get(digest);
    if (previous === label) return 'unchanged';
    const tokens = tokenize(content, this.tokenizeOptions);
    if (previous !== undefined) this.count(tokens, previous, -1);
    this.count(tokens, label, +1);
    this.data.seen.delete(digest);
    this.data.seen.set(digest, label);
    this.trimSeen();
    // Between saves a flood of learning could still grow memory without bound.
    if (this.data.tokens.size > this.options.maxTokens * 1.5) this.prune();
    return previous === undefined ? 'learned' : 'relearned';
  }

  /** Take a learned message's counts back. Returns false when the message was not learned (or was forgotten). */
  unlearn(content: MessageContent): boolean {
    const digest = messageDigest(content);
    const previous = this.data.seen.get(digest);
    if (previous === undefined) return false;
    this.count(tokenize(content, this.tokenizeOptions), previous, -1);
    this.data.seen.delete(digest);
    return true;
  }

  /**
   * The message's spam probability, or undefined while fewer than minSpam spams or
   * minHam hams were learned (too little to go on, as SpamAssassin does).
   */
  classify(content: MessageContent): Classification | undefined {
    const { spamMessages, hamMessages, tokens: known } = this.data;
    if (spamMessages < this.options.minSpam || hamMessages < this.options.minHam) return undefined;
    const today = this.today();
    const evidence: TokenEvidence[] = [];
    for (const token of tokenize(content, this.tokenizeOptions)) {
      const counts = known.get(token);
      if (counts === undefined) continue;
      const probability = tokenProbability(counts.spam, counts.ham, spamMessages, hamMessages, this.combine);
      if (Math.abs(probability - 0.5) <= this.combine.minimumDeviation) continue;
      // Tokens in use are not "old": pruning keeps them (SpamAssassin's atime update on scan).
      counts.day = today;
      evidence.push({ token, probability });
    }
    evidence.sort((a, b) => Math.abs(b.probability - 0.5) - Math.abs(a.probability - 0.5) || (a.token < b.token ? -1 : 1));
    const used = evidence.slice(0, this.combine.maxDiscriminators);
    return { probability: fisherCombine(used.map((e) => e.probability)), tokens: used };
  }

  /**
   * Write the store to its file atomically, pruning it to maxTokens first. Saves are
   * serialized; a failed save rejects with an Error naming the file and leaves the
   * previous file in place.
   */
  save(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.data.tokens.size > this.options.maxTokens) this.prune();
      await writeFileAtomically(this.path, serializeStore(this.data));
    };
    const result = this.saving.then(run, run);
    this.saving = result.catch(() => undefined);
    return result;
  }

  /**
   * Drop tokens down to maxTokens: the rarest first (seen in fewest messages), and
   * among equally rare the least recently used. Rare tokens are most of any store and
   * carry the least evidence (Robinson's f(w) keeps them near 0.5). Returns how many.
   */
  prune(): number {
    const excess = this.data.tokens.size - this.options.maxTokens;
    if (excess <= 0) return 0;
    const entries = [...this.data.tokens];
    entries.sort(([, a], [, b]) => a.spam + a.ham - (b.spam + b.ham) || a.day - b.day);
    for (let i = 0; i < excess; i++) this.data.tokens.delete(entries[i]![0]);
    return excess;
  }

  private count(tokens: readonly string[], label: Label, delta: 1 | -1): void {
    const today = this.today();
    const known = this.data.tokens;
    for (const token of tokens) {
      let counts = known.get(token);
      if (counts === undefined) {
        if (delta < 0) continue;
        counts = { spam: 0, ham: 0, day: today };
        known.set(token, counts);
      }
      if (label === 'spam') counts.spam = Math.max(0, counts.spam + delta);
      else counts.ham = Math.max(0, counts.ham + delta);
      counts.day = today;
      if (counts.spam === 0 && counts.ham === 0) known.delete(token);
    }
    if (label === 'spam') this.data.spamMessages = Math.max(0, this.data.spamMessages + delta);
    else this.data.hamMessages = Math.max(0, this.data.hamMessages + delta);
  }

  private trimSeen(): void {
    const seen = this.data.seen;
    if (seen.size <= this.options.maxSeen) return;
    for (const digest of seen.keys()) {
      seen.delete(digest);
      if (seen.size <= this.options.maxSeen) break;
    }
  }

  private today(): number {
    return Math.max(0, Math.floor(this.now() / DAY_MS));
  }
}
