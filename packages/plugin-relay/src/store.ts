/**
 * The on-disk queue. One message is two files in `<queueDir>/msg/`:
 *
 *   <id>.eml   the message as it will be sent (the gateway's headers included)
 *   <id>.json  the envelope and the state of every recipient (QueueEntry)
 *
 * Both are written to `<queueDir>/tmp/`, fsync'd, renamed into `msg/`, and `msg/`
 * is fsync'd: the .eml first, then the .json. A message exists once its .json does;
 * an .eml without .json is the remains of a crash before the commit and is removed
 * by the startup scan. State changes rewrite the .json the same way (atomic rename).
 *
 * The .json format only ever gains optional fields: an entry written by an older
 * version (without `dsn`, `notify`, `orcpt`) reads as one that asked for nothing
 * special, and an older version reading a newer entry ignores what it does not know.
 *
 * An envelope that is not an entry (not JSON, truncated, `{}`, a recipient missing its
 * state; disk damage or a hand edit, since writes are atomic) is corrupt: load() says
 * why, and the relay moves it with its body to `<queueDir>/corrupt/` (as Postfix does)
 * for the administrator to look at, instead of working on it or deleting it.
 *
 * Files are written 0600 and directories made 0700 (queue-dir.ts): queued mail is private.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { DsnNotify, OriginalRecipient } from '@mailgate/core';
import { DIR_MODE, FILE_MODE } from './queue-dir.js';

export type RecipientStatus = 'pending' | 'delivered' | 'failed' | 'held';

export interface QueueRecipient {
  address: string;
  /** Lower-cased domain part. */
  domain: string;
  status: RecipientStatus;
  attempts: number;
  /** Last reply or error, e.g. "550 5.1.1 no such user" or "connect ECONNREFUSED". */
  lastError?: string;
  /** Enhanced status for the DSN (e.g. 5.1.1), when known. */
  statusCode?: string;
  /** Host that gave the last answer. */
  remoteMta?: string;
  /**
   * For a failed recipient: set once its bounce (or double bounce) was queued, or it
   * was decided none is due (NOTIFY without FAILURE). For a delivered one: false while
   * a "relayed" DSN (NOTIFY=SUCCESS, next hop without DSN) is still to be queued.
   */
  notified?: boolean;
  /** RCPT's NOTIFY (RFC 3461); absent: failures (and delays, with `delayWarning`) are reported. */
  notify?: DsnNotify[];
  /** RCPT's ORCPT, decoded: passed to the next hop and reported as Original-Recipient. */
  orcpt?: OriginalRecipient;
  /** The reply that accepted this recipient, kept for a "relayed" DSN. */
  response?: string;
}

export interface QueueEntry {
  version: 1;
  id: string;
  /** Reverse-path; '' for the null sender. */
  sender: string;
  /** ms since epoch. */
  created: number;
  /** Next attempt, ms since epoch. */
  nextAttempt: number;
  attempts: number;
  size: number;
  bodyType: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
  /** What the message is: an ordinary message, a DSN we generated, or a double bounce to the postmaster. */
  kind: 'message' | 'bounce' | 'double-bounce';
  /** Id of the SMTP transaction that received it, for logs. */
  receivedTx?: string;
  recipients: QueueRecipient[];
  /** A delayed-delivery warning was sent. */
  warned?: boolean;
  /** MAIL's RET and ENVID (RFC 3461), passed to the next hop and used in our DSNs. */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
}

export function newQueueId(): string {
  // Sortable by time, unique across processes: base36 ms + 8 random hex digits.
  return `${Date.now().toString(36).toUpperCase().padStart(9, '0')}${randomBytes(4).toString('hex').toUpperCase()}`;
}

const ID_RE = /^[0-9A-Z]{6,40}$/;
export function isQueueId(id: string): boolean {
  return ID_RE.test(id);
}

/** The core's transaction ids, `<session id>.<n>` (`MWYAIZX16.1`): what the client's `250 … queued as` names. */
const TX_RE = /^[0-9A-Z]{1,40}\.[0-9]{1,10}$/;
export function isTransactionId(id: string): boolean {
  return TX_RE.test(id);
}

const STATUSES: readonly string[] = ['pending', 'delivered', 'failed', 'held'] satisfies RecipientStatus[];
const BODY_TYPES: readonly string[] = ['7BIT', '8BITMIME', 'BINARYMIME'] satisfies QueueEntry['bodyType'][];
const KINDS: readonly string[] = ['message', 'bounce', 'double-bounce'] satisfies QueueEntry['kind'][];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Why `value`, the parsed content of `<id>.json`, is not a QueueEntry the relay can work
 * on (its required fields, of the right types, and its own id); undefined if it is one.
 * Optional fields are not checked: the code reading them copes with their absence.
 */
export function entryProblem(value: unknown, id: string): string | undefined {
  if (!isRecord(value)) return `not an object (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
  if (value.version !== 1) return `unknown version ${JSON.stringify(value.version) ?? 'undefined'}`;
  if (value.id !== id) return `its id ${JSON.stringify(value.id) ?? 'undefined'} is not the file's`;
  if (typeof value.sender !== 'string') return 'no sender';
  for (const key of ['created', 'nextAttempt', 'attempts', 'size'] as const) if (!isCount(value[key])) return `no ${key}`;
  if (!BODY_TYPES.includes(value.bodyType as string)) return 'no bodyType';
  if (typeof value.smtputf8 !== 'boolean') return 'no smtputf8';
  if (!KINDS.includes(value.kind as string)) return 'no kind';
  if (!Array.isArray(value.recipients) || value.recipients.length === 0) return 'no recipients';
  for (const [i, r] of value.recipients.entries()) {
    if (!isRecord(r) || typeof r.address !== 'string' || typeof r.domain !== 'string' || !STATUSES.includes(r.status as string) || !isCount(r.attempts)) {
      return `recipient ${i} is not a recipient`;
    }
  }
  return undefined;
}

/** What load() found: the entry, or why the envelope is corrupt. */
export type Loaded = { entry: QueueEntry } | { corrupt: string };

export class QueueStore {
  readonly msgDir: string;
  readonly tmpDir: string;
  readonly ctlDir: string;
  /** Where corrupt envelopes are moved with their bodies (created when first needed). */
  readonly corruptDir: string;
  /** Ids and tmp files being written by this process right now: the startup scan must not clean them up. */
  private readonly writing = new Set<string>();

  constructor(readonly root: string) {
    this.msgDir = join(root, 'msg');
    this.tmpDir = join(root, 'tmp');
    this.ctlDir = join(root, 'ctl');
    this.corruptDir = join(root, 'corrupt');
  }

  /** Make the directories that do not exist yet (0700; existing ones keep their modes). */
  async init(): Promise<void> {
    for (const dir of [this.root, this.msgDir, this.tmpDir, this.ctlDir]) await mkdir(dir, { recursive: true, mode: DIR_MODE });
  }

  emlPath(id: string): string {
    return join(this.msgDir, `${id}.eml`);
  }

  jsonPath(id: string): string {
    return join(this.msgDir, `${id}.json`);
  }

  private tmpPath(name: string): string {
    const base = `${name}.${process.pid}.${randomBytes(4).toString('hex')}`;
    this.writing.add(base);
    return join(this.tmpDir, base);
  }

  private done(tmp: string): void {
    this.writing.delete(tmp.slice(this.tmpDir.length + 1));
  }

  /**
   * Store a new message durably: body, then envelope (the commit point). With `signal`,
   * writing the body stops when it aborts, and nothing is committed once it has (the
   * commit itself, once started, is not interrupted).
   */
  async add(entry: QueueEntry, body: Readable | Buffer, signal?: AbortSignal): Promise<void> {
    this.writing.add(entry.id);
    const tmpEml = this.tmpPath(`${entry.id}.eml`);
    try {
      try {
        const options = signal ? { signal } : {};
        if (Buffer.isBuffer(body)) await writeFile(tmpEml, body, { ...options, mode: FILE_MODE });
        else await pipeline(body, createWriteStream(tmpEml, { mode: FILE_MODE }), options);
        await fsyncFile(tmpEml);
        signal?.throwIfAborted();
        await rename(tmpEml, this.emlPath(entry.id));
      } catch (error) {
        await rm(tmpEml, { force: true });
        throw error;
      } finally {
        this.done(tmpEml);
      }
      await this.write(entry);
    } finally {
      this.writing.delete(entry.id);
    }
  }

  /** Atomically replace the envelope/state file (tmp → fsync → rename → fsync dir). */
  async write(entry: QueueEntry): Promise<void> {
    const tmp = this.tmpPath(`${entry.id}.json`);
    try {
      const handle = await open(tmp, 'w', FILE_MODE);
      try {
        await handle.writeFile(JSON.stringify(entry));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.jsonPath(entry.id));
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    } finally {
      this.done(tmp);
    }
    await fsyncDir(this.msgDir);
  }

  /** The entry, or undefined if the message is gone (delivered, deleted). */
  async read(id: string): Promise<QueueEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.jsonPath(id), 'utf8')) as QueueEntry;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * The entry checked (entryProblem), `{ corrupt }` if the envelope is not JSON or not an
   * entry, undefined if the message is gone. Errors reading the file (EACCES, EIO) are thrown.
   */
  async load(id: string): Promise<Loaded | undefined> {
    let text: string;
    try {
      text = await readFile(this.jsonPath(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { corrupt: text.length ? `not JSON (${(error as Error).message})` : 'empty file' };
    }
    const problem = entryProblem(value, id);
    return problem === undefined ? { entry: value as QueueEntry } : { corrupt: problem };
  }

  /** Move a message's envelope and body (if any) to corrupt/, envelope first; the envelope's new path. */
  async setAside(id: string): Promise<string> {
    await mkdir(this.corruptDir, { recursive: true, mode: DIR_MODE });
    const json = join(this.corruptDir, `${id}.json`);
    // The body first: a crash in between leaves an envelope without its body (which fails
    // and is looked at again), never a body without an envelope (which the start-up scan deletes).
    await rename(this.emlPath(id), join(this.corruptDir, `${id}.eml`)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(this.jsonPath(id), json);
    await fsyncDir(this.corruptDir);
    await fsyncDir(this.msgDir);
    return json;
  }

  async exists(id: string): Promise<boolean> {
    return stat(this.jsonPath(id)).then(
      () => true,
      () => false,
    );
  }

  /** Remove a message: the .json first (uncommits it), then the body. */
  async remove(id: string): Promise<void> {
    await rm(this.jsonPath(id), { force: true });
    await rm(this.emlPath(id), { force: true });
    await fsyncDir(this.msgDir);
  }

  /** Ids of every committed message; removes leftovers of crashes (tmp files, bodies without envelope). */
  async scan(cleanup: boolean): Promise<string[]> {
    const names = await readdir(this.msgDir);
    const json = new Set<string>();
    const eml: string[] = [];
    for (const name of names) {
      if (name.endsWith('.json')) json.add(name.slice(0, -5));
      else if (name.endsWith('.eml')) eml.push(name.slice(0, -4));
    }
    if (cleanup) {
      for (const id of eml) if (!json.has(id) && !this.writing.has(id)) await rm(this.emlPath(id), { force: true });
      for (const name of await readdir(this.tmpDir)) if (!this.writing.has(name)) await rm(join(this.tmpDir, name), { force: true });
    }
    return [...json].filter((id) => isQueueId(id)).sort();
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
