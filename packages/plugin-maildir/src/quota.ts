/**
 * Maildir++ quotas (the `maildirsize` file, as Courier, Dovecot's maildir++ quota
 * backend and maildrop keep it):
 *
 *   line 1:   the quota definition, e.g. "1073741824S,10000C"
 *   line 2..: "<bytes> <count>" deltas, one per delivery or removal (may be negative)
 *
 * The usage is the sum of the deltas. The file is rebuilt by scanning the Maildir
 * (every folder's new/ and cur/, sizes from the `,S=` in file names) when it is missing,
 * when its definition differs from the configured quota, when it grew past 5120 bytes,
 * or when it says "over quota" and is older than 15 minutes (the Maildir++ rules).
 */
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { QuotaLimit } from './options.js';

export interface Usage {
  bytes: number;
  messages: number;
}

export const MAILDIRSIZE = 'maildirsize';
const REBUILD_SIZE = 5120;
const RECHECK_AGE_MS = 15 * 60_000;

export function quotaDefinition(limit: QuotaLimit): string {
  const parts: string[] = [];
  if (limit.bytes !== undefined) parts.push(`${limit.bytes}S`);
  if (limit.messages !== undefined) parts.push(`${limit.messages}C`);
  return parts.join(',');
}

/** True if adding `add` (bytes, messages) to `usage` stays within `limit`. */
export function fits(usage: Usage, limit: QuotaLimit, add: Usage): boolean {
  if (limit.bytes !== undefined && usage.bytes + add.bytes > limit.bytes) return false;
  if (limit.messages !== undefined && usage.messages + add.messages > limit.messages) return false;
  return true;
}

/**
 * Parse a maildirsize text: its definition line and the summed deltas. Undefined (the
 * caller rebuilds the file) for a malformed line, and for a number or running sum that
 * is not a safe integer: past 2^53 Number() rounds, 309 digits give Infinity and
 * Infinity - Infinity NaN, and a NaN usage is never over any limit.
 */
export function parseMaildirsize(text: string): { definition: string; usage: Usage } | undefined {
  const lines = text.split('\n');
  const definition = (lines[0] ?? '').trim();
  let bytes = 0;
  let messages = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const m = /^(-?\d+)\s+(-?\d+)$/.exec(line);
    if (!m) return undefined;
    const b = Number(m[1]);
    const c = Number(m[2]);
    // Each addend exact, and each sum too: two safe integers add to less than 2^54, so an
    // inexact sum is rounded to 2^53 or beyond, which isSafeInteger refuses.
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(c)) return undefined;
    bytes += b;
    messages += c;
    if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(messages)) return undefined;
  }
  return { definition, usage: { bytes, messages } };
}

export interface QuotaStoreOptions {
  fileMode: number;
  /** Unique name for the temporary file of a rebuild. */
  uniqueName: () => string;
}

export class QuotaStore {
  constructor(private readonly o: QuotaStoreOptions) {}

  /** Current usage of the mailbox, read from (and if needed rebuilding) its maildirsize. */
  async usage(mailbox: string, limit: QuotaLimit): Promise<Usage> {
    const file = join(mailbox, MAILDIRSIZE);
    const definition = quotaDefinition(limit);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return this.rebuild(mailbox, definition);
    }
    const parsed = parseMaildirsize(text);
    if (!parsed || parsed.definition !== definition || Buffer.byteLength(text) > REBUILD_SIZE) return this.rebuild(mailbox, definition);
    if (!fits(parsed.usage, limit, { bytes: 1, messages: 1 })) {
      // Over (or at) quota by the file: confirm with a scan if the file is old (deletions may not be recorded).
      const st = await stat(file).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > RECHECK_AGE_MS) return this.rebuild(mailbox, definition);
    }
    return parsed.usage;
  }

  /**
   * Record a delivery (or a removal, with negative numbers): the Maildir++ way, one
   * appended line (O_APPEND, one write). Without a maildirsize yet, one is built by a
   * scan, which already counts the delivered message.
   */
  async add(mailbox: string, delta: Usage, limit: QuotaLimit): Promise<void> {
    let handle;
    try {
      handle = await open(join(mailbox, MAILDIRSIZE), constants.O_WRONLY | constants.O_APPEND);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.rebuild(mailbox, quotaDefinition(limit));
      return;
    }
    try {
      await handle.write(`${delta.bytes} ${delta.messages}\n`);
    } finally {
      await handle.close();
    }
  }

  /** Scan the Maildir and write a fresh maildirsize atomically (tmp/ + rename). */
  async rebuild(mailbox: string, definition: string): Promise<Usage> {
    const usage = await scanMaildir(mailbox);
    const tmp = join(mailbox, 'tmp', this.o.uniqueName());
    let handle;
    try {
      handle = await open(tmp, 'wx', this.o.fileMode);
    } catch (error) {
      // No Maildir yet (nothing delivered): nothing to record.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return usage;
      throw error;
    }
    try {
      await handle.writeFile(`${definition}\n${usage.bytes} ${usage.messages}\n`);
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, join(mailbox, MAILDIRSIZE));
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    return usage;
  }
}

/** Sum of the messages in new/ and cur/ of the Maildir and of each Maildir++ folder (`.name`). */
export async function scanMaildir(mailbox: string): Promise<Usage> {
  const usage: Usage = { bytes: 0, messages: 0 };
  const dirs = [mailbox];
  const entries = await readdir(mailbox, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory() && e.name.startsWith('.') && e.name !== '.' && e.name !== '..') dirs.push(join(mailbox, e.name));
  for (const dir of dirs) {
    for (const sub of ['new', 'cur']) {
      const path = join(dir, sub);
      const names = await readdir(path).catch(() => [] as string[]);
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const m = /,S=(\d+)/.exec(name);
        let size: number | undefined = m ? Number(m[1]) : undefined;
        if (size === undefined) {
          const st = await stat(join(path, name)).catch(() => undefined);
          if (!st?.isFile()) continue;
          size = st.size;
        }
        usage.bytes += size;
        usage.messages++;
      }
    }
  }
  return usage;
}
