/**
 * The Bayes database a running gateway classifies with. `mailgate spam train` writes
 * the file (atomically, by rename) while the gateway runs, so the gateway looks at the
 * file's modification time at most once per `reloadInterval` and loads a newer file in
 * the background; until it is loaded, messages are classified with the previous one.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '@mailgate/core';
import { BayesStore, type BayesOptions } from './bayes/index.js';

export class BayesFile {
  private store: BayesStore;
  private mtimeMs: number;
  private checkedAt: number;
  private reloading: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    store: BayesStore,
    mtimeMs: number,
    private readonly reloadInterval: number,
    private readonly log: Logger,
    private readonly storeOptions: BayesOptions,
  ) {
    this.store = store;
    this.mtimeMs = mtimeMs;
    this.checkedAt = Date.now();
  }

  /** Open `path` (a missing file is an empty database: nothing is classified until trained). */
  static async open(path: string, options: { reloadInterval: number; log: Logger; store?: BayesOptions }): Promise<BayesFile> {
    const mtimeMs = await modified(path);
    const store = await BayesStore.open(path, options.store);
    return new BayesFile(path, store, mtimeMs, options.reloadInterval, options.log, options.store ?? {});
  }

  /** The store to classify with now; starts a reload when the file changed. */
  current(): BayesStore {
    const now = Date.now();
    if (now - this.checkedAt >= this.reloadInterval && !this.reloading) {
      this.checkedAt = now;
      this.reloading = this.reload().finally(() => (this.reloading = undefined));
    }
    return this.store;
  }

  /** For tests: wait for a reload in progress. */
  async settled(): Promise<void> {
    await this.reloading;
  }

  private async reload(): Promise<void> {
    try {
      const mtimeMs = await modified(this.path);
      if (mtimeMs === this.mtimeMs) return;
      this.store = await BayesStore.open(this.path, this.storeOptions);
      this.mtimeMs = mtimeMs;
      this.log.info('spam: Bayes database reloaded', { file: this.path });
    } catch (error) {
      this.log.warn('spam: cannot reload the Bayes database, keeping the previous one', { file: this.path, error });
    }
  }
}

async function modified(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}
