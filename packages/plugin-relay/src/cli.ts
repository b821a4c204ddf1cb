/**
 * `mailgate queue list | show ID… | flush | retry ID… | delete ID… -c gateway.yaml`.
 * Reads the queue directory directly. Changes go through the running gateway when
 * there is one (a request file in `<queueDir>/ctl/`, answered within a few seconds),
 * so the gateway's scheduler never races the command; with no gateway running, the
 * command changes the files itself.
 *
 * Like postsuper, show/retry/delete take any number of ids, `-` for ids read from
 * stdin, and (delete only) `ALL`. An id is a queue id or the transaction id the client
 * was told (`250 2.0.0 OK: queued as MWYAIZX16.1`). Every id is acted on and reported;
 * the exit status is 1 if any was not found, 2 for a usage error (nothing is done then).
 */
import { readFile, rename, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatSize, readHeaderSection, type PluginCommand } from '@mailgate/core';
import type { z } from 'zod';
import type { relayOptionsSchema } from './options.js';
import { FILE_MODE } from './queue-dir.js';
import { isQueueId, isTransactionId, QueueStore, type QueueEntry } from './store.js';

type QueueCommand = PluginCommand<z.output<typeof relayOptionsSchema>>;

export const PID_FILE = 'gateway.pid';

export const USAGE = `usage: mailgate queue COMMAND [ARGS] -c gateway.yaml

  list            every queued message: id, size, arrival, sender, recipients and their state
  show ID...      messages: envelope, recipient states and the message headers
                  (control characters shown as ^X; --raw prints them as they are)
  flush           attempt delivery of every queued message now
  retry ID...     attempt delivery of messages now (held recipients become pending again)
  delete ID...    remove messages from the queue (no bounce is sent); ALL: every message

  ID is a queue id (as in list) or the transaction id the client got ("queued as
  MWYAIZX16.1"); "-" reads ids from stdin, separated by white space.
  Exit status: 0 done, 1 an id was not found (the others were acted on), 2 usage error.
`;

const COMMANDS = new Set(['list', 'show', 'flush', 'retry', 'delete']);

/** Ids per control request: a long list (ALL) is sent in parts, each answered within the timeout. */
const IDS_PER_REQUEST = 500;

/** Pid of the gateway that owns the queue directory, if it is alive. */
export async function runningGateway(root: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(root, PID_FILE), 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Queued headers, addresses and next hops' replies come from strangers: printed as they
 * are, an escape sequence in a Subject retitles or clears the operator's terminal (or
 * hides lines). Control characters other than tab and newline are shown `cat -v` style:
 * `^[` for ESC, `^?` for DEL, `M-^[` for the C1 controls (U+0080-U+009F, CSI among them).
 */
export function escapeControls(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code === 0x7f) return '^?';
    if (code >= 0x80) return `M-^${String.fromCharCode((code - 0x80) ^ 0x40)}`;
    return `^${String.fromCharCode(code ^ 0x40)}`;
  });
}

/** `out`, with what is written to it passed through escapeControls. */
function visible(out: NodeJS.WritableStream): NodeJS.WritableStream {
  return { write: (text: string) => out.write(escapeControls(text)) } as unknown as NodeJS.WritableStream;
}

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

const STATE_MARK: Record<string, string> = { pending: ' ', delivered: '+', failed: '!', held: 'H' };

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

/** A usage error: reported with the usage, exit 2, nothing done. */
class UsageError extends Error {}

/** The ids a command was given, `-` replaced by those on stdin, in order, without repeats. */
async function idArguments(sub: string, args: readonly string[]): Promise<string[]> {
  if (args.length === 0) throw new UsageError(`mailgate queue ${sub}: expected a queue id`);
  if (args.filter((a) => a === '-').length > 1) throw new UsageError(`mailgate queue ${sub}: "-" (ids from stdin) given twice`);
  const ids: string[] = [];
  for (const arg of args) ids.push(...(arg === '-' ? (await readStdin()).split(/\s+/).filter(Boolean) : [arg]));
  const bad = ids.filter((id) => !isQueueId(id) && !isTransactionId(id) && !(sub === 'delete' && id === 'ALL'));
  if (bad.length) throw new UsageError(`mailgate queue ${sub}: not a queue id or transaction id: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return [...new Set(ids)];
}

/** What an argument names: queue ids, with the transaction id it was given as, if it was one. */
interface Target {
  id: string;
  tx?: string;
}

/**
 * Queue ids for the arguments: a queue id stands for itself (whether it exists is
 * found out when acting on it), a transaction id for the entries whose `receivedTx` it
 * is, `ALL` for every message. Transaction ids that match nothing are returned apart.
 */
async function resolveTargets(store: QueueStore, args: readonly string[]): Promise<{ targets: Target[]; unknown: string[] }> {
  let byTx: Map<string, string[]> | undefined;
  const txIndex = async (): Promise<Map<string, string[]>> => {
    if (byTx) return byTx;
    byTx = new Map();
    for (const qid of await store.scan(false)) {
      const loaded = await store.load(qid).catch(() => undefined);
      if (!loaded || 'corrupt' in loaded || !loaded.entry.receivedTx) continue;
      const list = byTx.get(loaded.entry.receivedTx) ?? [];
      list.push(qid);
      byTx.set(loaded.entry.receivedTx, list);
    }
    return byTx;
  };
  const targets: Target[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  const add = (t: Target) => {
    if (!seen.has(t.id)) targets.push(t);
    seen.add(t.id);
  };
  for (const arg of args) {
    if (arg === 'ALL') for (const id of await store.scan(false)) add({ id });
    else if (isTransactionId(arg)) {
      const ids = (await txIndex()).get(arg);
      if (ids) for (const id of ids) add({ id, tx: arg });
      else unknown.push(arg);
    } else add({ id: arg });
  }
  return { targets, unknown };
}

const named = (t: Target) => (t.tx ? `${t.id} (tx ${t.tx})` : t.id);

export const queueCommand: QueueCommand = {
  summary: 'list, show, flush, retry or delete messages of the relay queue',
  usage: USAGE,
  async run(args, context) {
    const out = context.stdout;
    const err = context.stderr;
    try {
      return await runQueueCommand(args, resolve(context.configDir, context.options.queueDir), context.options.controlPoll, out, err);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      write(err, `${error.message}\n\n${USAGE}`);
      return 2;
    }
  },
};

async function runQueueCommand(argv: readonly string[], root: string, controlPoll: number, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const store = new QueueStore(root);
  // `show --raw`: the header section as it is, escape sequences and all (postcat style).
  const raw = argv[0] === 'show' && argv.includes('--raw');
  const args = raw ? argv.filter((a) => a !== '--raw') : argv;
  const option = args.find((a) => a.startsWith('-') && a !== '-');
  if (option !== undefined) throw new UsageError(`mailgate queue: unknown option ${option}`);
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('mailgate queue: missing queue command');
  if (!COMMANDS.has(sub)) throw new UsageError(`mailgate queue: unknown queue command: ${sub}`);
  if ((sub === 'list' || sub === 'flush') && rest.length) throw new UsageError(`mailgate queue ${sub}: unexpected argument ${JSON.stringify(rest[0])}`);
  const ids = sub === 'list' || sub === 'flush' ? [] : await idArguments(sub, rest);

  try {
    await stat(store.msgDir);
  } catch {
    if (sub === 'list') {
      write(out, 'Mail queue is empty');
      return 0;
    }
    write(err, `mailgate queue: no queue at ${root}`);
    return 1;
  }
  if (sub === 'list') return list(store, visible(out));

  const pid = await runningGateway(root);
  if (sub === 'flush') {
    if (pid !== undefined) {
      const answer = await request(store, 'flush', controlPoll * 5 + 5_000);
      if (answer === undefined) {
        write(err, `mailgate queue flush: the gateway (pid ${pid}) did not answer`);
        return 1;
      }
      write(answer.startsWith('ok') ? out : err, `flush: ${answer}`);
      return answer.startsWith('ok') ? 0 : 1;
    }
    // No gateway: change the files directly.
    let n = 0;
    for (const qid of await store.scan(false)) {
      const loaded = await store.load(qid);
      if (!loaded || 'corrupt' in loaded) continue;
      const entry = loaded.entry;
      entry.nextAttempt = Date.now();
      await store.write(entry);
      n++;
    }
    write(out, `flush: ${n} message(s) due at the next start of the gateway`);
    return 0;
  }

  const { targets, unknown } = await resolveTargets(store, ids);
  let failed = unknown.length > 0;
  for (const tx of unknown) write(err, `mailgate queue ${sub}: ${tx} not found (no queued message was received in that transaction)`);
  if (ids.includes('ALL') && targets.length === 0) write(out, `${sub} ALL: the queue is empty`);

  if (sub === 'show') {
    for (const [i, t] of targets.entries()) {
      if (!(await show(store, t, i > 0, raw ? out : visible(out), err, raw))) failed = true;
    }
    return failed ? 1 : 0;
  }

  if (pid !== undefined) {
    const timeout = controlPoll * 5 + 5_000;
    for (let i = 0; i < targets.length; i += IDS_PER_REQUEST) {
      const part = targets.slice(i, i + IDS_PER_REQUEST);
      // `<op>-ids`, not `<op> ID…`: a gateway older than multi-id requests answers "bad
      // request" to it, where it would have acted on the first id of `<op> ID ID…` only.
      const answer = await request(store, `${sub}-ids ${part.map((t) => t.id).join(' ')}`, timeout);
      if (answer === undefined) {
        write(err, `mailgate queue ${sub}: the gateway (pid ${pid}) did not answer; not known whether ${part.map(named).join(', ')} were done`);
        return 1;
      }
      const results = new Map(answer.split('\n').map((line) => [line.split(' ', 1)[0]!, line.slice(line.indexOf(' ') + 1)] as const));
      for (const t of part) {
        const result = results.get(t.id) ?? (answer.startsWith('ok') || !answer.trim() ? 'no answer' : answer.trim());
        if (result === 'ok') write(out, `${sub} ${named(t)}: ok`);
        else {
          failed = true;
          write(err, `mailgate queue ${sub}: ${named(t)}${result === 'not found' ? ' ' : ': '}${result}`);
        }
      }
    }
    return failed ? 1 : 0;
  }

  // No gateway: change the files directly.
  for (const t of targets) {
    const loaded = await store.load(t.id).catch((error: Error) => ({ corrupt: `cannot read: ${error.message}` }));
    if (!loaded) {
      failed = true;
      write(err, `mailgate queue ${sub}: ${named(t)} not found`);
    } else if (sub === 'delete') {
      await store.remove(t.id);
      write(out, `delete ${named(t)}: ok`);
    } else if ('corrupt' in loaded) {
      failed = true;
      write(err, `mailgate queue retry: ${named(t)}: corrupt envelope (${loaded.corrupt}), ${store.jsonPath(t.id)}`);
    } else {
      const entry: QueueEntry = loaded.entry;
      for (const r of entry.recipients) if (r.status === 'held') r.status = 'pending';
      entry.nextAttempt = Date.now();
      await store.write(entry);
      write(out, `retry ${named(t)}: ok (due at the next start of the gateway)`);
    }
  }
  return failed ? 1 : 0;
}

async function list(store: QueueStore, out: NodeJS.WritableStream): Promise<number> {
  const ids = await store.scan(false);
  let count = 0;
  let bytes = 0;
  let corrupt = 0;
  for (const qid of ids) {
    const loaded = await store.load(qid).catch((error: Error) => ({ corrupt: `cannot read: ${error.message}` }));
    if (!loaded) continue;
    if ('corrupt' in loaded) {
      // The gateway moves it to corrupt/ at its next start; `show` and `delete` still work on it.
      corrupt++;
      write(out, `${qid}? ${'?'.padStart(8)} (corrupt envelope: ${loaded.corrupt})`);
      continue;
    }
    const entry = loaded.entry;
    count++;
    bytes += entry.size;
    const held = entry.recipients.every((r) => r.status !== 'pending');
    write(
      out,
      `${entry.id}${held ? '!' : ' '} ${String(entry.size).padStart(8)} ${new Date(entry.created).toISOString()}  <${entry.sender}>` +
        `${held ? '  (held)' : `  next ${new Date(entry.nextAttempt).toISOString()}`}`,
    );
    for (const r of entry.recipients) {
      write(out, `   ${STATE_MARK[r.status] ?? '?'} ${r.address}${r.lastError ? `  (${r.lastError})` : ''}`);
    }
  }
  write(out, count ? `-- ${formatSize(bytes)} in ${count} message${count === 1 ? '' : 's'}` : 'Mail queue is empty');
  if (corrupt) write(out, `-- ${corrupt} corrupt envelope${corrupt === 1 ? '' : 's'} (moved to ${store.corruptDir} when the gateway next looks at them)`);
  const setAside = (await readdir(store.corruptDir).catch(() => [])).filter((n) => n.endsWith('.json')).length;
  if (setAside) write(out, `-- ${setAside} corrupt envelope${setAside === 1 ? '' : 's'} set aside in ${store.corruptDir}`);
  return 0;
}

/** Print one message (envelope JSON, a blank line, its headers); false if it is not in the queue. */
async function show(store: QueueStore, t: Target, separate: boolean, out: NodeJS.WritableStream, err: NodeJS.WritableStream, raw: boolean): Promise<boolean> {
  const loaded = await store.load(t.id);
  if (!loaded) {
    write(err, `mailgate queue show: ${named(t)} not found`);
    return false;
  }
  if (separate) write(out, '');
  if ('corrupt' in loaded) write(err, `mailgate queue show: ${named(t)}: corrupt envelope (${loaded.corrupt}), ${store.jsonPath(t.id)}`);
  else write(out, JSON.stringify(loaded.entry, null, 2));
  write(out, '');
  const section = await readHeaderSection(store.emlPath(t.id)).catch(() => undefined);
  if (section === undefined) {
    write(out, '(message file missing)');
    return true;
  }
  // The section comes as one character per octet: --raw gives those octets back as they
  // are (postcat style); otherwise they are read as UTF-8 (what headers are, RFC 6532),
  // a stray octet shown as U+FFFD, and control characters escaped by `out`.
  const bytes = Buffer.from(`${section.replace(/\r\n/g, '\n')}\n`, 'latin1');
  if (raw) out.write(bytes);
  else write(out, bytes.toString('utf8'));
  return true;
}

async function request(store: QueueStore, text: string, timeout: number): Promise<string | undefined> {
  const name = `${Date.now().toString().padStart(15, '0')}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const req = join(store.ctlDir, `${name}.req`);
  const res = join(store.ctlDir, `${name}.res`);
  await writeFile(join(store.ctlDir, `${name}.tmp`), text, { mode: FILE_MODE });
  // rename so the gateway never reads a half-written request
  await rename(join(store.ctlDir, `${name}.tmp`), req);
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    try {
      const answer = await readFile(res, 'utf8');
      if ((await readdir(store.ctlDir)).includes(`${name}.req`)) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      await rm(res, { force: true });
      return answer;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await rm(req, { force: true });
  return undefined;
}
