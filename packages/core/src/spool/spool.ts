import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, lstat, mkdir, rm, unlink } from 'node:fs/promises';
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
  private readonly prefix = `${process.pid}.${randomBytes(4).toString('hex')}`;

  constructor(readonly options: SpoolOptions) {}

  /** Create the spool directory (private to the gateway's user). */
  init(): Promise<void> {
    this.ready ??= mkdir(this.options.dir, { recursive: true, mode: 0o700 }).then(
      () => assertPrivateDirectory(this.options.dir),
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

  /** Remove a message's spool file once its transaction is over. */
  async release(message: Message | undefined): Promise<void> {
    const path = message?.spoolPath;
    if (path) await unlink(path).catch(() => undefined);
  }

  /** Remove the whole spool directory's leftovers from a previous run (called at start). */
  async purge(): Promise<void> {
    await rm(this.options.dir, { recursive: true, force: true });
    this.ready = undefined;
    await this.init();
  }
}

/**
 * The default spool lives in a shared temporary directory under a predictable name:
 * refuse one that another user created (or a symlink to elsewhere), since whoever
 * owns it could read or replace messages in flight.
 */
async function assertPrivateDirectory(dir: string): Promise<void> {
  const info = await lstat(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory()) throw new Error(`spool directory ${dir} is not a directory (a symlink or file is refused)`);
  if (uid !== undefined && info.uid !== uid) throw new Error(`spool directory ${dir} belongs to uid ${info.uid}, not to this process (uid ${uid})`);
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

class SpoolSink implements BodySink {
  private chunks: Buffer[] = [];
  private size = 0;
  private file: WriteStream | undefined;
  private path: string | undefined;
  private error: Error | undefined;
  private nextCollect = GC_HINT_INTERVAL;

  constructor(
    private readonly spool: Spool,
    private readonly nextPath: () => string,
  ) {}

  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
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
    this.path = this.nextPath();
    this.file = createWriteStream(this.path, { flags: 'wx', mode: 0o600, highWaterMark: 256 * 1024 });
    this.file.on('error', (err) => {
      this.error ??= err;
    });
    const pending = this.chunks;
    this.chunks = [];
    let ok = true;
    for (const c of pending) ok = this.file.write(c);
    return ok;
  }

  drained(): Promise<void> {
    const file = this.file;
    if (!file || !file.writableNeedDrain || this.error) return Promise.resolve();
    return new Promise((resolve) => {
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
    await this.spool.init();
    if (!this.file) return new Message({ kind: 'memory', chunks: this.chunks }, this.size);
    const file = this.file;
    await new Promise<void>((resolve, reject) => {
      if (this.error) return reject(this.error);
      file.once('error', reject);
      file.end(() => resolve());
    });
    if (this.error) throw this.error;
    return new Message({ kind: 'file', path: this.path! }, this.size);
  }

  async abort(): Promise<void> {
    this.chunks = [];
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
