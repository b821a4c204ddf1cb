/**
 * `mailgate queue list | show ID | flush | retry ID | delete ID -c gateway.yaml`.
 * Reads the queue directory directly. Changes go through the running gateway when
 * there is one (a request file in `<queueDir>/ctl/`, answered within a few seconds),
 * so the gateway's scheduler never races the command; with no gateway running, the
 * command changes the files itself.
 */
import { readFile, rename, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatSize, readHeaderSection, type PluginCommand } from '@mailgate/core';
import type { z } from 'zod';
import type { relayOptionsSchema } from './options.js';
import { isQueueId, QueueStore, type QueueEntry } from './store.js';

type QueueCommand = PluginCommand<z.output<typeof relayOptionsSchema>>;

export const PID_FILE = 'gateway.pid';

export const USAGE = `usage: mailgate queue COMMAND [ARGS] -c gateway.yaml

  list          every queued message: id, size, arrival, sender, recipients and their state
  show ID       one message: envelope, recipient states and the message headers
  flush         attempt delivery of every queued message now
  retry ID      attempt delivery of one message now (held recipients become pending again)
  delete ID     remove a message from the queue (no bounce is sent)
`;

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

function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

const STATE_MARK: Record<string, string> = { pending: ' ', delivered: '+', failed: '!', held: 'H' };

export const queueCommand: QueueCommand = {
  summary: 'list, show, flush, retry or delete messages of the relay queue',
  usage: USAGE,
  async run(args, context) {
    const root = resolve(context.configDir, context.options.queueDir);
    const store = new QueueStore(root);
    const [sub, id] = args;
    const out = context.stdout;
    const err = context.stderr;
    const needId = () => {
      if (!id || !isQueueId(id)) {
        write(err, `mailgate queue ${sub}: expected a queue id\n${USAGE}`);
        return false;
      }
      return true;
    };
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
    switch (sub) {
      case 'list': {
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
      case 'show': {
        if (!needId()) return 2;
        const loaded = await store.load(id!);
        if (!loaded) {
          write(err, `mailgate queue show: ${id} not found`);
          return 1;
        }
        if ('corrupt' in loaded) write(err, `mailgate queue show: ${id}: corrupt envelope (${loaded.corrupt}), ${store.jsonPath(id!)}`);
        else write(out, JSON.stringify(loaded.entry, null, 2));
        write(out, '');
        write(out, (await readHeaderSection(store.emlPath(id!)).catch(() => '(message file missing)')).replace(/\r\n/g, '\n'));
        return 0;
      }
      case 'flush':
      case 'retry':
      case 'delete': {
        if (sub !== 'flush' && !needId()) return 2;
        const pid = await runningGateway(root);
        if (pid !== undefined) {
          const answer = await request(store, `${sub}${id && sub !== 'flush' ? ` ${id}` : ''}`, context.options.controlPoll * 5 + 5_000);
          if (answer === undefined) {
            write(err, `mailgate queue ${sub}: the gateway (pid ${pid}) did not answer`);
            return 1;
          }
          write(answer.startsWith('ok') ? out : err, `${sub}${id && sub !== 'flush' ? ` ${id}` : ''}: ${answer}`);
          return answer.startsWith('ok') ? 0 : 1;
        }
        // No gateway: change the files directly.
        if (sub === 'flush') {
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
        const loaded = await store.load(id!).catch((error: Error) => ({ corrupt: `cannot read: ${error.message}` }));
        if (!loaded) {
          write(err, `mailgate queue ${sub}: ${id} not found`);
          return 1;
        }
        if (sub === 'delete') {
          await store.remove(id!);
          write(out, `delete ${id}: ok`);
        } else if ('corrupt' in loaded) {
          write(err, `mailgate queue retry: ${id}: corrupt envelope (${loaded.corrupt}), ${store.jsonPath(id!)}`);
          return 1;
        } else {
          const entry: QueueEntry = loaded.entry;
          for (const r of entry.recipients) if (r.status === 'held') r.status = 'pending';
          entry.nextAttempt = Date.now();
          await store.write(entry);
          write(out, `retry ${id}: ok (due at the next start of the gateway)`);
        }
        return 0;
      }
      default:
        write(sub ? err : out, USAGE);
        return sub ? 2 : 0;
    }
  },
};

async function request(store: QueueStore, text: string, timeout: number): Promise<string | undefined> {
  const name = `${Date.now().toString().padStart(15, '0')}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const req = join(store.ctlDir, `${name}.req`);
  const res = join(store.ctlDir, `${name}.res`);
  await writeFile(join(store.ctlDir, `${name}.tmp`), text);
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
