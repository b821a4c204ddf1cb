/**
 * Files the ACL reads (lists, the users file), reloaded when they change.
 *
 * A change is noticed by polling, not fs.watch (which misses editors that replace
 * the file, and fires unreliably on network file systems): when the file is used and
 * the last check is older than `reloadInterval`, it is stat()ed, and re-read if its
 * size, mtime, ctime or inode changed. `reloadInterval: 0` checks on every use (tests).
 * A file that fails to parse on reload keeps its previous content (and the error is
 * logged); at startup the error is fatal, with the file name and line.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from '@mailgate/core';

export interface WatchedFileOptions<T> {
  path: string;
  /** Minimum milliseconds between two stat() calls. */
  reloadInterval: number;
  parse: (text: string, path: string) => T;
  log: Logger;
  /** Called after a successful reload (not the first load). */
  onReload?: (value: T) => void;
  now?: () => number;
}

/** One file's parsed content, kept fresh. */
export class WatchedFile<T> {
  readonly path: string;
  private data!: T;
  private signature = '';
  private lastCheck = 0;
  private checking: Promise<void> | undefined;
  /** Bumped on every successful (re)load, so callers can cache derived data. */
  version = 0;

  constructor(private readonly options: WatchedFileOptions<T>) {
    this.path = options.path;
  }

  /** First load: throws with a message naming the file (and line) on any problem. */
  async load(): Promise<void> {
    const { text, signature } = await this.read();
    this.data = this.options.parse(text, this.path);
    this.signature = signature;
    this.lastCheck = this.now();
    this.version++;
  }

  /** The current content, re-read first if the file changed (at most once per `reloadInterval`). */
  async get(): Promise<T> {
    if (this.now() - this.lastCheck >= this.options.reloadInterval) {
      this.checking ??= this.check().finally(() => {
        this.checking = undefined;
      });
      await this.checking;
    }
    return this.data;
  }

  /** The content as last loaded, without checking the file. */
  get current(): T {
    return this.data;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async check(): Promise<void> {
    this.lastCheck = this.now();
    let signature: string;
    try {
      signature = await fileSignature(this.path);
    } catch (error) {
      this.options.log.warn('ACL file cannot be read; keeping its previous content', { file: this.path, error });
      return;
    }
    if (signature === this.signature) return;
    try {
      const { text, signature: read } = await this.read();
      const value = this.options.parse(text, this.path);
      this.data = value;
      this.signature = read;
      this.version++;
      this.options.log.info('ACL file reloaded', { file: this.path });
      this.options.onReload?.(value);
    } catch (error) {
      // Remember the bad version so the error is logged once, not on every use.
      this.signature = signature;
      this.options.log.error('ACL file has errors; keeping its previous content', { file: this.path, error });
    }
  }

  private async read(): Promise<{ text: string; signature: string }> {
    // Stat before reading: if the file changes while it is read, the next check sees a new signature.
    const signature = await fileSignature(this.path);
    const text = await readFile(this.path, 'utf8');
    return { text, signature };
  }
}

async function fileSignature(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** Resolve a path from the options against the config file's directory. */
export function resolvePath(dir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dir, path);
}

/** One entry of a list file, with where it came from for error messages. */
export interface ListLine {
  text: string;
  line: number;
}

/**
 * A list file: one entry a line; blank lines and lines starting with `#` are skipped,
 * and so is a trailing ` # comment` (except on /regex/ lines, where `#` may be meant).
 */
export function splitListFile(text: string): ListLine[] {
  const out: ListLine[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    let t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    if (!t.startsWith('/')) t = t.replace(/\s+#.*$/, '');
    if (t !== '') out.push({ text: t, line: index + 1 });
  });
  return out;
}

export class FileError extends Error {
  override readonly name = 'FileError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    message: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${message}`);
  }
}
