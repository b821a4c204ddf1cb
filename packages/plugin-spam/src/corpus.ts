/**
 * The messages `mailgate spam train` reads: files (one message each), directories
 * walked recursively (a Maildir's cur/ and new/, never tmp/), and with `mbox` files
 * split into their messages. Hidden entries (`.Junk`, `.Trash`: Maildir++ folders hold
 * other kinds of mail) and mail-server index files are skipped when walking, so
 * pointing at ~/Maildir trains only its inbox. Only the head of each message
 * (`maxBytes`) is kept in memory, however large the file.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileHead } from './read-head.js';

export interface CorpusMessage {
  /** `path`, or `path#n` for the n-th message (from 1) of an mbox file. */
  source: string;
  bytes: Buffer;
}

/** Files a mail server keeps beside the messages (Dovecot, Courier, Maildir++). */
const NOT_MESSAGES = /^(?:dovecot[.-].*|maildirfolder|maildirsize|courierimap.*|subscriptions|\.DS_Store)$/i;
/** A directory deeper than this is a symlink loop or not mail. */
const MAX_DEPTH = 20;

export class CorpusError extends Error {
  override readonly name = 'CorpusError';
}

export async function* corpusMessages(paths: readonly string[], options: { mbox: boolean; maxBytes: number }): AsyncGenerator<CorpusMessage> {
  for (const path of paths) {
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      throw new CorpusError(`${path}: ${error.code === 'ENOENT' ? 'no such file or directory' : error.message}`);
    });
    if (info.isDirectory()) yield* walk(path, options, 0);
    // Opening a FIFO without a writer blocks forever (and a device may never end): the
    // walk below skips them, and a path given by name is refused rather than waited on.
    else if (!info.isFile()) throw new CorpusError(`${path}: not a regular file or a directory (a FIFO, socket or device)`);
    else yield* fileMessages(path, options);
  }
}

async function* walk(dir: string, options: { mbox: boolean; maxBytes: number }, depth: number): AsyncGenerator<CorpusMessage> {
  if (depth > MAX_DEPTH) return;
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: Error) => {
    throw new CorpusError(`${dir}: ${error.message}`);
  });
  const names = new Set(entries.map((e) => e.name));
  const maildir = names.has('cur') && names.has('new');
  const sorted = entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of sorted) {
    if (entry.name.startsWith('.') || NOT_MESSAGES.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      // A Maildir's tmp/ holds deliveries in progress, and only cur/ and new/ hold its messages.
      if (maildir ? entry.name === 'cur' || entry.name === 'new' : entry.name !== 'tmp') yield* walk(path, options, depth + 1);
    } else if (entry.isFile()) {
      yield* fileMessages(path, options);
    }
  }
}

async function* fileMessages(path: string, options: { mbox: boolean; maxBytes: number }): AsyncGenerator<CorpusMessage> {
  if (!options.mbox) {
    const { bytes } = await readFileHead(path, options.maxBytes).catch((error: Error) => {
      throw new CorpusError(`${path}: ${error.message}`);
    });
    if (bytes.length > 0) yield { source: path, bytes };
    return;
  }
  yield* mboxMessages(path, options.maxBytes);
}

/**
 * The messages of an mbox file: each starts at a "From " line at the start of the file
 * or after an empty line (mboxo/mboxrd; ">From " lines in bodies stay as they are, the
 * tokenizer does not mind). Streamed: an mbox of many gigabytes is fine.
 */
async function* mboxMessages(path: string, maxBytes: number): AsyncGenerator<CorpusMessage> {
  let stream;
  try {
    stream = createReadStream(path);
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', () => resolve());
      stream!.once('error', reject);
    });
  } catch (error) {
    throw new CorpusError(`${path}: ${(error as Error).message}`);
  }
  let parts: Buffer[] = [];
  let kept = 0;
  let count = 0;
  let started = false;
  let previousEmpty = true;
  let rest = Buffer.alloc(0);
  const finish = (beforeSeparator: boolean): CorpusMessage | undefined => {
    if (!started) return undefined;
    count++;
    // The empty line before a "From " line belongs to the separator, not to the message.
    const last = parts[parts.length - 1];
    if (beforeSeparator && last && isEmptyLine(last)) {
      parts.pop();
      kept -= last.length;
    }
    const bytes = Buffer.concat(parts, kept);
    parts = [];
    kept = 0;
    return { source: `${path}#${count}`, bytes };
  };
  const take = (line: Buffer) => {
    if (kept >= maxBytes) return;
    const piece = line.subarray(0, maxBytes - kept);
    parts.push(piece);
    kept += piece.length;
  };
  for await (const chunk of stream) {
    const data = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let nl = data.indexOf(10, start); nl >= 0; nl = data.indexOf(10, start)) {
      const line = data.subarray(start, nl + 1);
      start = nl + 1;
      if (previousEmpty && line.subarray(0, 5).toString('latin1') === 'From ') {
        const done = finish(true);
        if (done) yield done;
        started = true;
      } else if (started) {
        take(line);
      }
      previousEmpty = isEmptyLine(line);
    }
    rest = Buffer.from(data.subarray(start));
    // A line longer than the kept head need not be kept whole to find the next "From ".
    if (rest.length > maxBytes + 64) {
      if (started) take(rest);
      rest = Buffer.alloc(0);
      previousEmpty = false;
    }
  }
  if (rest.length && started) take(rest);
  const last = finish(false);
  if (last) yield last;
}

function isEmptyLine(line: Buffer): boolean {
  return (line.length === 1 && line[0] === 10) || (line.length === 2 && line[0] === 13 && line[1] === 10);
}
