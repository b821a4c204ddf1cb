/**
 * The Bayes store on disk: UTF-8 text, one record a line, so that it loads with one
 * read and one split (150 000 tokens in well under a second) and an administrator can
 * look into it with `grep`:
 *
 *   mailgate-bayes 1 <spam messages> <ham messages> <token lines> <seen lines>
 *   <spam count>\t<ham count>\t<last used, days since 1970>\t<token>     (× token lines)
 *   <message digest>\t<s|h>                                                (× seen lines)
 *
 * The token is the last field, so it may hold tabs; one that holds a line break, a
 * backslash, a double quote or a surrogate is written as a JSON string instead (and
 * then starts with `"`). The counts on the first line let a truncated file be told
 * from a complete one.
 *
 * Writes are atomic: a temporary file beside the store is written, fsync'ed and renamed
 * over it, and the directory is fsync'ed, so a crash leaves the old or the new store,
 * never half of one.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export type Label = 'spam' | 'ham';

/** A token's counts: messages of each class that had it, and the day it was last used. */
export interface TokenCounts {
  spam: number;
  ham: number;
  day: number;
}

export interface StoreData {
  spamMessages: number;
  hamMessages: number;
  tokens: Map<string, TokenCounts>;
  /** Digests of learned messages and their label, oldest first (SpamAssassin's bayes_seen). */
  seen: Map<string, Label>;
}

const MAGIC = 'mailgate-bayes';
const VERSION = 1;
const NEEDS_JSON = /[\n\r"\\\ud800-\udfff]/;

export function emptyStoreData(): StoreData {
  return { spamMessages: 0, hamMessages: 0, tokens: new Map(), seen: new Map() };
}

/** Read a store; a missing file is an empty store, anything unreadable an Error naming the file. */
export async function readStoreFile(path: string): Promise<StoreData> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyStoreData();
    throw new Error(`Bayes store ${path} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  return parseStore(text, path);
}

export function parseStore(text: string, path: string): StoreData {
  const corrupt = (line: number, why: string): Error => new Error(`Bayes store ${path} is corrupt at line ${line}: ${why}`);
  const lines = text.split('\n');
  const header = (lines[0] ?? '').split(' ');
  if (header[0] !== MAGIC) throw corrupt(1, `not a ${MAGIC} file`);
  if (header[1] !== String(VERSION)) throw corrupt(1, `unsupported version ${header[1] ?? ''}`);
  const [spamMessages, hamMessages, tokenLines, seenLines] = header.slice(2).map(count);
  if (
    header.length !== 6 ||
    spamMessages === undefined ||
    hamMessages === undefined ||
    tokenLines === undefined ||
    seenLines === undefined
  ) {
    throw corrupt(1, 'bad header');
  }
  // The last line is empty: the file ends with a newline.
  if (lines.length !== 1 + tokenLines + seenLines + 1 || lines[lines.length - 1] !== '') {
    throw corrupt(Math.min(lines.length, 2 + tokenLines + seenLines), 'truncated or extended');
  }
  const data: StoreData = { spamMessages, hamMessages, tokens: new Map(), seen: new Map() };
  for (let i = 1; i <= tokenLines; i++) {
    const line = lines[i]!;
    const t1 = line.indexOf('\t');
    const t2 = line.indexOf('\t', t1 + 1);
    const t3 = line.indexOf('\t', t2 + 1);
    if (t1 < 0 || t2 < 0 || t3 < 0) throw corrupt(i + 1, 'expected 4 fields');
    const spam = count(line.slice(0, t1));
    const ham = count(line.slice(t1 + 1, t2));
    const day = count(line.slice(t2 + 1, t3));
    if (spam === undefined || ham === undefined || day === undefined) throw corrupt(i + 1, 'bad count');
    let token = line.slice(t3 + 1);
    if (token.startsWith('"')) {
      try {
        token = JSON.parse(token) as string;
      } catch {
        throw corrupt(i + 1, 'bad quoted token');
      }
      if (typeof token !== 'string') throw corrupt(i + 1, 'bad quoted token');
    }
    data.tokens.set(token, { spam, ham, day });
  }
  for (let i = tokenLines + 1; i <= tokenLines + seenLines; i++) {
    const line = lines[i]!;
    const tab = line.indexOf('\t');
    const label = line.slice(tab + 1);
    if (tab <= 0 || (label !== 's' && label !== 'h')) throw corrupt(i + 1, 'bad seen record');
    data.seen.set(line.slice(0, tab), label === 's' ? 'spam' : 'ham');
  }
  return data;
}

function count(field: string): number | undefined {
  if (!/^\d{1,15}$/.test(field)) return undefined;
  return Number(field);
}

export function serializeStore(data: StoreData): string {
  const lines: string[] = [`${MAGIC} ${VERSION} ${data.spamMessages} ${data.hamMessages} ${data.tokens.size} ${data.seen.size}`];
  for (const [token, counts] of data.tokens) {
    const field = NEEDS_JSON.test(token) || token.startsWith('"') ? JSON.stringify(token) : token;
    lines.push(`${counts.spam}\t${counts.ham}\t${counts.day}\t${field}`);
  }
  for (const [digest, label] of data.seen) lines.push(`${digest}\t${label === 'spam' ? 's' : 'h'}`);
  lines.push('');
  return lines.join('\n');
}

/** Replace `path` with `text` atomically (tmp + fsync + rename + fsync of the directory). */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  // The rename replaces the file with the temporary one, mode and owner included: give it
  // the old file's, or a store the admin made readable to the gateway's user (0640, its
  // group) would turn 0600 and owned by whoever trained, and the gateway could not read it.
  const previous = await stat(path).catch(() => undefined);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      if (previous) {
        await handle.chown(previous.uid, previous.gid).catch(() => undefined); // only root may give files away
        await handle.chmod(previous.mode & 0o7777);
      }
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new Error(`Bayes store ${path} cannot be written: ${(error as Error).message}`, { cause: error });
  }
  // The rename is durable only once the directory is on disk; some systems cannot open a directory for that.
  try {
    const directory = await open(dirname(path), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch {
    // best effort
  }
}
