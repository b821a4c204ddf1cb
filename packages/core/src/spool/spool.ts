import { createWriteStream, type WriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { collectDeadChunks, GC_HINT_INTERVAL } from './gc-hint.js';
import { Message } from './message.js';

/** Where a body being received goes. The engine writes decoded chunks and respects back-pressure. */
export interface BodySink {
  /** Append a chunk. Returns false when the caller should wait for `drained()` before writing more. */
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
  /** All bytes written: flush and return the message. */
  finish(): Promise<Message>;
  /** Drop everything written so far (refused or aborted message). */
  abort(): Promise<void>;
}

export interface SpoolOptions {
  dir: string;
  /** Bodies up to this many bytes stay in memory; larger ones stream to a file in `dir`. */
  memoryThreshold: number;
}

/**
 * The message spool. Small bodies are kept in memory (a file per 1 KB message
 * would cost four syscalls on the hot path); anything larger streams to a file,
 * so a 50 MB message costs the process a few MB at most.
 */
export class Spool {
  private ready: Promise<void> | undefined;
  private seq = 0;
  private readonly tag = randomBytes(4).toString('hex');
  private readonly prefix = `${process.pid}.${this.tag}`;

  constructor(readonly options: SpoolOptions) {
    liveTags.add(this.tag);
  }

  /** Create the spool directory (private to the gateway's user). */
  init(): Promise<void> {
    this.ready ??= mkdir(this.options.dir, { recursive: true, mode: 0o700 }).then(
      async () => {
        await assertPrivateDirectory(this.options.dir);
        await removeOrphans(this.options.dir);
      },
      (error: unknown) => {
        // Do not remember a failure: the next message tries again (the disk may be back).
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  open(): BodySink {
    return new SpoolSink(this, () => join(this.options.dir, `${this.prefix}.${++this.seq}.eml`));
  }

  /** The directory vanished (a tmp cleaner): create it again on the next message. */
  forget(): void {
    this.ready = undefined;
  }

  /** Remove a message's spool file once its transaction is over. */
  async release(message: Message | undefined): Promise<void> {
    const path = message?.spoolPath;
    if (path) await unlink(path).catch(() => undefined);
  }

}

/** A spool file's name: `<pid>.<instance>.<seq>.eml` (see Spool.prefix). */
const SPOOL_FILE = /^(\d+)\.([0-9a-f]{8})\.\d+\.eml$/;
/**
 * How old an orphan must be before it is removed. A file in use is written until the end
 * of its DATA and read by queue taps just after: never untouched this long. The age also
 * covers what a pid cannot tell: a gateway in another container sharing the directory
 * (its pid means nothing here).
 */
const ORPHAN_AGE_MS = 60 * 60_000;
/** Instance tags of the spools of this process (several gateways may share one directory). */
const liveTags = new Set<string>();

/**
 * Remove the spool files of gateways that are gone (a kill -9 or a crash in the middle of
 * DATA leaves one; its message was never acknowledged, the client retries): files older
 * than an hour whose process is dead, or that carry this process's pid under a tag no
 * spool of this process has (a restart that got the same pid, as PID 1 in a container).
 */
async function removeOrphans(dir: string, now = Date.now()): Promise<number> {
  const ownPid = String(process.pid);
  let removed = 0;
  for (const name of await readdir(dir)) {
    const m = SPOOL_FILE.exec(name);
    if (!m || liveTags.has(m[2]!)) continue;
    if (m[1] !== ownPid && processAlive(Number(m[1]))) continue;
    const path = join(dir, name);
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isFile() || now - info.mtimeMs < ORPHAN_AGE_MS) continue;
    await unlink(path).then(() => removed++, () => undefined);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The default spool lives in a shared temporary directory under a predictable name:
 * refuse one that another user created (or a symlink to elsewhere), or that others
 * may write to (spool.dir: /tmp), since whoever can could read or replace messages in
 * flight. Its mode is never changed: it may be a directory other programs rely on.
 */
async function assertPrivateDirectory(dir: string): Promise<void> {
  const info = await lstat(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory()) throw new Error(`spool directory ${dir} is not a directory (a symlink or file is refused)`);
  if (uid !== undefined && info.uid !== uid) throw new Error(`spool directory ${dir} belongs to uid ${info.uid}, not to this process (uid ${uid})`);
  if ((info.mode & 0o022) !== 0) {
    throw new Error(`spool directory ${dir} is writable by others (mode ${(info.mode & 0o7777).toString(8)}); use a private directory such as ${join(dir, 'mailgate-spool')}`);
  }
}

class SpoolSink implements BodySink {
  private chunks: Buffer[] = [];
  private size = 0;
  private file: WriteStream | undefined;
  private path: string | undefined;
  private error: Error | undefined;
  private opening: Promise<void> | undefined;
  private nextCollect = GC_HINT_INTERVAL;
  /** The body's first byte (-1 while empty): see Message's `bodyStartsWithWhitespace`. */
  private firstByte = -1;

  constructor(
    private readonly spool: Spool,
    private readonly nextPath: () => string,
  ) {}

  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    if (this.size === 0) this.firstByte = chunk[0]!;
    this.size += chunk.length;
    if (this.file) {
      if (this.size >= this.nextCollect) {
        this.nextCollect = this.size + GC_HINT_INTERVAL;
        collectDeadChunks();
      }
      return this.file.write(chunk);
    }
    // Chunks may be slices of the socket's buffer; keep them only until we spill.
    this.chunks.push(chunk);
    if (this.size <= this.spool.options.memoryThreshold) return true;
    // Spill: the caller waits in drained() while the file is opened.
    this.opening ??= this.openFile().catch((error: unknown) => {
      this.error ??= error as Error;
    });
    return false;
  }

  /** Open the spool file (re-creating a spool directory a tmp cleaner removed) and write what is held so far. */
  private async openFile(): Promise<void> {
    const path = this.nextPath();
    let handle: FileHandle;
    try {
      handle = await open(path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.spool.forget();
      await this.spool.init();
      handle = await open(path, 'wx', 0o600);
    }
    this.path = path;
    const file = createWriteStream(path, { fd: handle, highWaterMark: 256 * 1024 });
    file.on('error', (error: Error) => {
      this.error ??= error;
    });
    this.file = file;
    const pending = this.chunks;
    this.chunks = [];
    for (const c of pending) file.write(c);
  }

  async drained(): Promise<void> {
    if (this.opening) await this.opening;
    const file = this.file;
    if (!file || !file.writableNeedDrain || this.error) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        file.off('drain', done);
        file.off('error', done);
        resolve();
      };
      file.on('drain', done);
      file.on('error', done);
    });
  }

  async finish(): Promise<Message> {
    try {
      return await this.complete();
    } catch (error) {
      // Nothing of a message that failed to spool may stay behind (a full disk stays full).
      await this.abort();
      throw error;
    }
  }

  private async complete(): Promise<Message> {
    await this.spool.init();
    if (this.opening) await this.opening;
    if (this.error) throw this.error;
    const options = { bodyStartsWithWhitespace: this.firstByte === 0x20 || this.firstByte === 0x09 };
    if (!this.file) return new Message({ kind: 'memory', chunks: this.chunks }, this.size, options);
    const file = this.file;
    // end()'s callback gets the error of the last writes (ENOSPC), and may run before the
    // stream's 'error' event: ignoring it answered 250 for a message whose file was empty.
    await new Promise<void>((resolve, reject) => {
      if (this.error) return reject(this.error);
      file.once('error', reject);
      file.end((error?: Error | null) => (error ? reject(error) : resolve()));
    });
    if (this.error) throw this.error;
    // Belt and braces: the file holds every byte received, or the message is not taken.
    if (file.bytesWritten !== this.size) throw new Error(`spool file ${this.path} is short: ${file.bytesWritten} of ${this.size} bytes written`);
    return new Message({ kind: 'file', path: this.path! }, this.size, options);
  }

  async abort(): Promise<void> {
    this.chunks = [];
    if (this.opening) await this.opening;
    const file = this.file;
    if (!file) return;
    await new Promise<void>((resolve) => {
      if (file.closed) return resolve();
      file.once('close', () => resolve());
      file.destroy();
    });
    if (this.path) await unlink(this.path).catch(() => undefined);
  }
}
