/**
 * @mailgate/plugin-relay — outbound delivery: a durable on-disk queue, MX routing
 * (or smarthost / per-domain routes), an SMTP client, retries with back-off, DSN
 * bounces, delivery events for other plugins and the `mailgate queue` command.
 */
import { resolve } from 'node:path';
import { rm, readFile, writeFile } from 'node:fs/promises';
import { accept, definePlugin, tempfail, type Message, type PluginGatewayView, type Verdict } from '@mailgate/core';
import { queueCommand, PID_FILE, runningGateway } from './cli.js';
import { NON_ASCII } from './client.js';
import { relayHooks } from './hooks.js';
import { relayOptionsSchema, type RelayOptions } from './options.js';
import { Relay } from './relay.js';
import { checkQueueDir, FILE_MODE, openToOthers } from './queue-dir.js';
import { ownAddressCheck, type Listening } from './own-address.js';
import { newQueueId, QueueStore, type QueueEntry } from './store.js';

export { relayOptionsSchema, destinationSchema, type RelayOptions, type RelayOptionsInput, type Destination } from './options.js';
export { relayHooks, type RelayHooks, type DeliveredEvent, type DeferredEvent, type BouncedEvent } from './hooks.js';
export type { QueueEntry, QueueRecipient, RecipientStatus } from './store.js';

const relayPlugin = definePlugin({
  name: '@mailgate/plugin-relay',
  core: '0.x',
  options: relayOptionsSchema,
  commands: { queue: queueCommand },
  async setup({ name, tap, options, gateway, log, configDir, onClose, onListen }) {
    const opts = options as RelayOptions;
    const root = resolve(configDir, opts.queueDir);
    const store = new QueueStore(root);
    // Nothing is created here: `mailgate check` runs setup too and must leave the disk
    // alone. A queueDir that could not be made fails now, as when setup made it.
    await checkQueueDir(root);

    const relay = new Relay({
      options: opts,
      store,
      dns: gateway.dns,
      log,
      hostname: gateway.hostname,
      hooks: relayHooks(gateway),
      local: gateway,
      isOwnAddress: ownAddressCheck({ listening: () => listeningOn(gateway), allowLoopback: opts.allowLoopbackMx }),
    });
    const pidFile = resolve(root, PID_FILE);
    let started = false;
    let stopped = false;
    let refused = false;

    // The queue is taken over (directories, pid file, scan, deliveries) only once the
    // gateway listens: `mailgate check` also runs setup, and must neither create the
    // queue, deliver mail nor clash with a running gateway.
    let markOwned: () => void = () => undefined;
    /** Settles once it is known whether this gateway owns the queue (and its directories exist). */
    const owned = new Promise<void>((done) => (markOwned = done));
    let recheck: NodeJS.Timeout | undefined;
    const start = async (): Promise<void> => {
      const other = await runningGateway(root);
      if (other !== undefined && other !== process.pid) {
        if (!refused) log.error('relay: the queue directory is in use by another running gateway; relaying is refused (451) until it is gone', { queueDir: root, pid: other });
        refused = true;
        // The other one may be on its way out (a restart: the old gateway keeps its pid file
        // until its sessions end; a kill -9 leaves it until the process is reaped): look
        // again every few seconds and take the queue over once it is gone.
        recheck = setTimeout(() => {
          if (stopped) return;
          start().catch((error: unknown) => log.error('relay: cannot start the queue', { error }));
        }, OWNER_RECHECK_MS);
        recheck.unref();
        return;
      }
      if (refused) log.info('relay: the other gateway is gone; this one takes over the queue', { queueDir: root, pid: process.pid });
      refused = false;
      await store.init();
      await writeFile(pidFile, `${process.pid}\n`, { mode: FILE_MODE });
      started = true;
      markOwned();
      for (const dir of await openToOthers([root, store.msgDir, store.tmpDir, store.ctlDir, store.corruptDir])) {
        // Made by someone else (the relay makes its directories 0700): not changed behind the administrator's back.
        log.warn('relay: a queue directory is open to other users; queued mail may be readable (chmod 700 it)', dir);
      }
      await relay.start();
    };
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((done) => (markReady = done));
    onListen(async () => {
      if (stopped) return markReady();
      try {
        await start();
      } catch (error) {
        log.error('relay: cannot start the queue', { error });
      }
      markOwned();
      markReady();
    });
    relays.set(gateway, { relay, ready });

    /** Transactions whose queue entry is written but not yet scheduled: reset decides. */
    const written = new WeakMap<object, string>();

    const claimed: Verdict = accept(undefined, { reason: 'relay' });
    tap('claim', (_session, _tx, rcpt) => (rcpt.data.relayAllowed === true ? claimed : undefined));

    tap('queue', async (_session, tx, call) => {
      const recipients = tx.claimedBy(name);
      if (recipients.length === 0) return undefined;
      // Listeners accept before onListen has run: a message that arrives that early waits
      // for the ownership check and the directories instead of racing them.
      await owned;
      if (refused) return tempfail(undefined, { reason: `relay queue ${root} is owned by another gateway` });
      const message = tx.message;
      if (!message) throw new Error('no message to queue');
      const id = newQueueId();
      const now = Date.now();
      const entry: QueueEntry = {
        version: 1,
        id,
        sender: tx.senderText,
        created: now,
        nextAttempt: now,
        attempts: 0,
        size: message.size,
        bodyType: tx.bodyType,
        // The client's SMTPUTF8 only where the message needs it: an all-ASCII one goes to a
        // server without SMTPUTF8 as it is (Postfix does the same), not back as a 5.6.7 bounce.
        smtputf8: tx.smtputf8 && (await needsSmtpUtf8(tx.senderText, recipients.map((r) => r.text), message)),
        kind: 'message',
        receivedTx: tx.id,
        recipients: recipients.map((r) => ({
          address: r.text,
          domain: r.address.domain.toLowerCase(),
          status: 'pending',
          attempts: 0,
          ...(r.dsn?.notify ? { notify: [...r.dsn.notify] } : {}),
          ...(r.dsn?.orcpt ? { orcpt: { type: r.dsn.orcpt.type, address: r.dsn.orcpt.address } } : {}),
        })),
        ...(tx.dsn ? { dsn: { ...tx.dsn } } : {}),
      };
      const hops = (await message.headers()).filter((h) => h.name.toLowerCase() === 'received').length;
      if (hops > opts.maxHops) {
        // RFC 5321 §6.3: a loop is detected by counting trace headers; bounce instead of sending it round again.
        for (const r of entry.recipients) {
          r.status = 'failed';
          r.statusCode = '5.4.6';
          r.lastError = `mail forwarding loop: ${hops} Received: headers (limit ${opts.maxHops})`;
        }
      }
      // Past the tap's timeout the client has its 451 and will send the message again:
      // stop writing it, and do not commit a copy that would be delivered twice.
      await store.add(entry, message.stream(), call.signal);
      log.info('relay: queued', { id, tx: tx.id, from: entry.sender, rcpts: recipients.length, size: entry.size });
      if (tx.outcome) {
        // The transaction already ended (this tap outlived its timeout, the client got 451):
        // `reset` ran without knowing this entry, so it is withdrawn here.
        await withdraw(id, tx.id);
        return tempfail(undefined, { reason: 'relay queue write outlived the tap' });
      }
      written.set(tx, id);
      return accept(undefined, { reason: `relay queue ${id}` });
    });

    // The entry is on disk (fsync'd) when `queue` resolves, but delivery starts only here,
    // once every queue tap succeeded and the client got 250: a storage plugin listed after
    // the relay may still fail the message (4xx/5xx), and then the relayed copy must not go
    // out (the client would retry it, and each retry would be delivered once more).
    //
    // Crash safety: an entry is written once and never marked "not yet accepted". A crash
    // after a later queue tap failed but before this reset removed the entry leaves it in
    // the queue, and the next start delivers it although the client got 4xx/5xx: a
    // duplicate, in a window of milliseconds that exists anyway between our fsync and the
    // client reading our 250 (the same one Postfix has). A "pending" marker cleared here
    // would close it only by opening a worse one: a crash between the 250 and clearing the
    // marker would discard mail the client was told we took. At least once, never lost.
    tap('reset', (_session, tx) => {
      const id = written.get(tx);
      if (id === undefined) return undefined;
      written.delete(tx);
      if (tx.outcome?.queued) {
        relay.enqueued(id);
        return undefined;
      }
      return withdraw(id, tx.id);
    });
    const withdraw = async (id: string, txId: string): Promise<void> => {
      await store.remove(id);
      log.warn('relay: a later queue step failed: queue entry withdrawn, not relayed', { id, tx: txId });
    };

    onClose(async () => {
      stopped = true;
      clearTimeout(recheck);
      markOwned();
      markReady();
      await relay.close();
      relays.delete(gateway);
      if (!started) return;
      const pid = await readFile(pidFile, 'utf8').catch(() => '');
      if (pid.trim() === String(process.pid)) await rm(pidFile, { force: true });
    });
  },
});

/** How often a gateway refused the queue looks again whether its owner is gone. */
const OWNER_RECHECK_MS = 2_000;

/**
 * The sockets the gateway listens on: its `addresses` once it listens (real ports for
 * port 0, resolved host names), else the configured `listen` entries.
 */
function listeningOn(gateway: PluginGatewayView): Listening[] {
  const actual = gateway.addresses;
  if (actual.length) return actual.map((a) => ({ address: a.address, port: a.port }));
  return gateway.config.listen.map((l) => ({ address: l.host, port: l.port }));
}

const relays = new WeakMap<object, { relay: Relay; ready: Promise<void> }>();

/**
 * For embedding programs and tests: the relay of a gateway (once set up). `ready`
 * resolves once the queue was scanned (after the gateway started listening).
 */
export function relayQueue(gateway: object): { readonly scheduled: number; readonly ready: Promise<void>; flush(): number } | undefined {
  const found = relays.get(gateway);
  if (!found) return undefined;
  const { relay, ready } = found;
  return {
    get scheduled() {
      return relay.size;
    },
    ready,
    flush: () => relay.flush(),
  };
}

export default relayPlugin;

/** Non-ASCII in the envelope or the header section: what only an SMTPUTF8 server may receive (RFC 6531 §3.4). */
async function needsSmtpUtf8(sender: string, recipients: readonly string[], message: Message): Promise<boolean> {
  if (NON_ASCII.test(sender) || recipients.some((r) => NON_ASCII.test(r))) return true;
  return (await message.headers()).some((h) => NON_ASCII.test(h.name) || NON_ASCII.test(h.value));
}
