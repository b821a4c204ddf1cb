/**
 * The delivery engine: an in-memory timetable over the on-disk queue (only id →
 * next attempt is kept in memory), a dispatcher with global and per-domain
 * concurrency limits, delivery per destination domain, retries with exponential
 * back-off and jitter, bounces and double bounces.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildDeliveryReport, formatOrcpt, MAX_ORCPT_LENGTH, type DnsResolver, type Logger, type PluginGatewayView, type ReportedRecipient, type Reply } from '@mailgate/core';
import { ConnectionPool, TransactionError, oneLine, where as hopName, type SendResult } from './client.js';
import { enhancedStatus } from './dsn.js';
import { TimeHeap } from './heap.js';
import type { RelayHooks } from './hooks.js';
import type { RelayOptions } from './options.js';
import { route, type Hop, type OwnAddressCheck } from './routing.js';
import { FILE_MODE } from './queue-dir.js';
import { isQueueId, newQueueId, QueueStore, type QueueEntry, type QueueRecipient } from './store.js';

export interface RelayDeps {
  options: RelayOptions;
  store: QueueStore;
  dns: DnsResolver;
  log: Logger;
  hostname: string;
  hooks: RelayHooks;
  /**
   * The gateway's own local domains and its submit(): mail the queue holds for a local
   * recipient (a bounce to a local sender) is handed to the gateway's storage plugins
   * instead of being sent to ourselves by MX.
   */
  local?: Pick<PluginGatewayView, 'isLocalDomain' | 'submit'>;
  /**
   * Is this (address, port) the gateway itself (own-address.ts)? Hops found by MX lookup
   * that are ours fail with "loops back to myself". Default: nothing is.
   */
  isOwnAddress?: OwnAddressCheck;
}

/** Outcome for one recipient of one attempt. */
type Outcome =
  /** `dsn`: the next hop took the DSN parameters, so it reports on delivery from now on. */
  | { kind: 'delivered'; host: string; mta: string; response: string; dsn: boolean }
  /** `host`: the Remote-MTA name for the DSN; `relay`: `host[address]:port` for the log. */
  | { kind: 'permanent'; error: string; status: string; host?: string; relay?: string }
  | { kind: 'temporary'; error: string; host?: string; relay?: string };

export class Relay {
  private readonly options: RelayOptions;
  readonly store: QueueStore;
  private readonly dns: DnsResolver;
  private readonly log: Logger;
  private readonly hostname: string;
  private readonly hooks: RelayHooks;
  private readonly local: RelayDeps['local'];
  private readonly isOwnAddress: OwnAddressCheck;
  private readonly pool: ConnectionPool;

  /** id → time of its scheduled attempt (the heap may hold stale pairs; this map is the truth). */
  private readonly index = new Map<string, number>();
  private readonly heap = new TimeHeap();
  private readonly busy = new Set<string>();
  private readonly deleteAfter = new Set<string>();
  private readonly retryAfter = new Set<string>();
  private readonly active = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private ctlTimer: NodeJS.Timeout | undefined;
  private closing = false;

  private running = 0;
  private readonly perDomain = new Map<string, number>();
  private readonly waiters: Array<{ domain: string; go: () => void }> = [];

  constructor(deps: RelayDeps) {
    this.options = deps.options;
    this.store = deps.store;
    this.dns = deps.dns;
    this.log = deps.log;
    this.hostname = deps.hostname;
    this.hooks = deps.hooks;
    this.local = deps.local;
    this.isOwnAddress = deps.isOwnAddress ?? (() => false);
    this.pool = new ConnectionPool({
      heloName: deps.options.heloName ?? deps.hostname,
      connectTimeout: deps.options.connectTimeout,
      commandTimeout: deps.options.commandTimeout,
      idleTimeout: deps.options.idleTimeout,
    });
  }

  /** Messages known to the scheduler (pending ones; held-only messages are on disk only). */
  get size(): number {
    return this.index.size;
  }

  /** Scan the queue directory and schedule every message with pending recipients. */
  async start(): Promise<void> {
    await this.store.init();
    const ids = await this.store.scan(true);
    let held = 0;
    let unreadable = 0;
    for (let i = 0; i < ids.length; i += 64) {
      const batch = await Promise.all(
        ids.slice(i, i + 64).map((id) =>
          this.store.load(id).then(
            (loaded) => ({ id, loaded }),
            (error: unknown) => ({ id, error }),
          ),
        ),
      );
      for (const item of batch) {
        if ('error' in item) {
          // Not a damaged file but one we cannot read now (EACCES, EIO): left alone, tried at the next start.
          unreadable++;
          this.log.error('relay: cannot read a queue file; left in the queue, not scheduled', { id: item.id, path: this.store.jsonPath(item.id), error: item.error });
          continue;
        }
        if (!item.loaded) continue;
        if ('corrupt' in item.loaded) {
          unreadable++;
          await this.setAside(item.id, item.loaded.corrupt);
          continue;
        }
        const entry = item.loaded.entry;
        // After a crash: finished messages not yet removed, failures not yet bounced, "relayed" DSNs not yet queued.
        if (entry.recipients.some((r) => r.status !== 'held' && !isSettled(r))) this.schedule(entry.id, entry.nextAttempt);
        else if (entry.recipients.every(isSettled)) await this.store.remove(entry.id);
        else held++;
      }
    }
    if (ids.length) this.log.info('relay queue loaded', { messages: ids.length, scheduled: this.index.size, held, ...(unreadable ? { unreadable } : {}) });
    this.ctlTimer = setInterval(() => void this.pollControl(), this.options.controlPoll);
    this.ctlTimer.unref();
  }

  /** A corrupt envelope (not JSON, not an entry): moved with its body to corrupt/, or left in place if that fails. */
  private async setAside(id: string, reason: string): Promise<void> {
    const path = this.store.jsonPath(id);
    try {
      const to = await this.store.setAside(id);
      this.log.error(`relay: corrupt queue file moved to ${this.store.corruptDir}; not delivered nor bounced`, { id, path, reason, movedTo: to });
    } catch (error) {
      this.log.error('relay: corrupt queue file, left in the queue, not scheduled', { id, path, reason, error });
    }
  }

  async close(timeout = 5_000): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ctlTimer) clearInterval(this.ctlTimer);
    const deadline = new Promise((resolve) => setTimeout(resolve, timeout).unref());
    await Promise.race([Promise.allSettled([...this.active]), deadline]);
    this.pool.close();
  }

  /** A new message, already on disk: deliver it now. */
  enqueued(id: string): void {
    this.schedule(id, Date.now());
  }

  schedule(id: string, at: number): void {
    this.index.set(id, at);
    this.heap.push(at, id);
    if (at < this.timerAt) this.arm();
  }

  /** Make every scheduled message due now. */
  flush(): number {
    const now = Date.now();
    const ids = [...this.index.keys()];
    for (const id of ids) if (!this.busy.has(id)) this.schedule(id, now);
    return ids.length;
  }

  private arm(): void {
    if (this.closing) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const next = this.heap.peekTime();
    if (next === undefined) return;
    const delay = Math.max(0, Math.min(next - Date.now(), 2 ** 31 - 1));
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, delay);
    this.timer.unref();
  }

  /** Start due messages while there is room (at most 2 × concurrency messages in progress). */
  private pump(): void {
    if (this.closing) return;
    const now = Date.now();
    const limit = this.options.concurrency * 2;
    while (this.active.size < limit) {
      const t = this.heap.peekTime();
      if (t === undefined || t > now) break;
      const { time, id } = this.heap.pop()!;
      if (this.index.get(id) !== time || this.busy.has(id)) continue; // stale entry
      this.busy.add(id);
      const job: Promise<void> = this.process(id)
        .catch((error: unknown) => {
          this.log.error('relay: processing failed', { id, error });
          if (!this.index.has(id)) return;
          this.schedule(id, Date.now() + this.options.retry.schedule[0]!);
        })
        .finally(() => {
          this.busy.delete(id);
          this.active.delete(job);
          if (this.deleteAfter.delete(id)) void this.deleteNow(id);
          if (this.retryAfter.delete(id)) void this.retry(id);
          this.pump();
        });
      this.active.add(job);
    }
    this.arm();
  }

  private take(domain: string): void {
    this.running++;
    this.perDomain.set(domain, (this.perDomain.get(domain) ?? 0) + 1);
  }

  private fits(destination: string): boolean {
    // The smarthost carries every domain without a route: it gets the whole `concurrency`
    // (what the per-domain slots together allowed it before), like Postfix's relayhost.
    const limit = destination === SMARTHOST ? this.options.concurrency : this.options.perDestination;
    return this.running < this.options.concurrency && (this.perDomain.get(destination) ?? 0) < limit;
  }

  /**
   * Where a domain's mail goes, as the key that groups recipients into one transaction
   * and counts `perDestination`: every domain without a route of its own goes to the
   * smarthost when there is one, so they share its transactions (Postfix groups by next
   * hop too); otherwise the domain (its MX, its route, or our own storage).
   */
  private destinationOf(domain: string): string {
    if (!this.options.smarthost || this.options.routes[domain] !== undefined || this.local?.isLocalDomain(domain)) return domain;
    return SMARTHOST;
  }

  /** A delivery slot (global and per destination); FIFO among waiters that fit. */
  private async acquire(domain: string): Promise<void> {
    if (this.fits(domain)) return this.take(domain);
    // the slot is taken for us by release() before we are woken
    await new Promise<void>((go) => this.waiters.push({ domain, go }));
  }

  private release(domain: string): void {
    this.running--;
    const n = (this.perDomain.get(domain) ?? 1) - 1;
    if (n) this.perDomain.set(domain, n);
    else this.perDomain.delete(domain);
    for (let i = 0; i < this.waiters.length && this.running < this.options.concurrency; ) {
      const w = this.waiters[i]!;
      if (this.fits(w.domain)) {
        this.waiters.splice(i, 1);
        this.take(w.domain);
        w.go();
      } else i++;
    }
  }

  /** One delivery attempt of every pending recipient of a message. */
  private async process(id: string): Promise<void> {
    const loaded = await this.store.load(id);
    if (!loaded || 'corrupt' in loaded) {
      this.index.delete(id);
      if (loaded) await this.setAside(id, loaded.corrupt);
      return;
    }
    const entry = loaded.entry;
    const now = Date.now();
    const pending = entry.recipients.filter((r) => r.status === 'pending');
    const groups = new Map<string, QueueRecipient[]>();
    for (const r of pending) {
      const key = this.destinationOf(r.domain);
      const g = groups.get(key) ?? [];
      g.push(r);
      groups.set(key, g);
    }
    // [destination (slot key), a domain of the group (what deliver() routes by), recipients]
    const chunks: Array<[string, string, QueueRecipient[]]> = [];
    const max = this.options.maxRecipientsPerTransaction;
    for (const [key, list] of groups) for (let i = 0; i < list.length; i += max) chunks.push([key, list[0]!.domain, list.slice(i, i + max)]);

    entry.attempts++;
    const expired = now - entry.created >= this.options.retry.maxAge;
    entry.nextAttempt = now + this.delay(entry.attempts);
    const delivered: Array<{ recipients: string[]; host: string; response: string }> = [];
    const deferred: Array<{ recipients: string[]; error: string; relay: string | undefined; status: string }> = [];
    /** Where each recipient's last attempt went (`host[address]:port`, `local`), for the log. */
    const relayOf = new Map<QueueRecipient, string>();

    // Each transaction's result is written as soon as it is known (fewer duplicates after a crash).
    let writes = Promise.resolve();
    const persist = () => (writes = writes.then(() => this.store.write(entry)));

    await Promise.all(
      chunks.map(async ([destination, domain, recipients]) => {
        await this.acquire(destination);
        // The slot is held until the result is on disk: after a crash, at most `concurrency`
        // transactions per destination can have been accepted there and not recorded here.
        try {
          const outcomes = await this.deliver(entry, domain, recipients);
          const ok: string[] = [];
          /** Deferred recipients by error: one log line and one `deferred` event per distinct reason. */
          const later = new Map<string, { recipients: string[]; relay: string | undefined; status: string }>();
          let host = '';
          let response = '';
          for (const [r, o] of outcomes) {
            r.attempts++;
            const relay = o.kind === 'delivered' ? o.host : o.relay ?? o.host;
            if (relay) relayOf.set(r, relay);
            if (o.kind === 'delivered') {
              r.status = 'delivered';
              r.remoteMta = o.host;
              r.lastError = undefined;
              if (!o.dsn && wantsRelayedDsn(entry, r)) {
                // RFC 3461 §5.2.2: the next hop will not report success, so we say it was relayed.
                r.notified = false;
                r.remoteMta = o.mta;
                r.response = o.response;
              }
              ok.push(r.address);
              host = o.host;
              response = o.response;
            } else if (o.kind === 'permanent') {
              r.status = 'failed';
              r.lastError = o.error;
              r.statusCode = o.status;
              if (o.host) r.remoteMta = o.host;
            } else {
              r.lastError = o.error;
              r.statusCode = enhancedStatus(o.error, 4);
              if (o.host) r.remoteMta = o.host;
              if (expired) {
                r.status = 'failed';
                r.statusCode = '4.4.7';
                r.lastError = `delivery time expired; last error: ${o.error}`;
              } else {
                const group = later.get(o.error) ?? { recipients: [], relay, status: r.statusCode };
                group.recipients.push(r.address);
                later.set(o.error, group);
              }
            }
          }
          if (ok.length) delivered.push({ recipients: ok, host, response });
          for (const [error, group] of later) deferred.push({ error, ...group });
          if (ok.length) {
            await persist();
            // Postfix's `status=sent`: one line per transaction the next hop accepted.
            this.log.info('relay: sent', { id, ...txOf(entry), to: ok.join(','), relay: host, delay: delaySeconds(entry), status: 'sent', response });
          }
        } finally {
          this.release(destination);
        }
      }),
    );
    await writes;

    // Bounce what failed and was not reported yet, unless its NOTIFY asked for no failure DSN.
    const failed = entry.recipients.filter((r) => r.status === 'failed' && !r.notified);
    const silent = new Set(failed.filter((r) => !wantsFailureDsn(entry, r)));
    for (const r of silent) r.notified = true;
    const toBounce = failed.filter((r) => !silent.has(r));
    // Postfix's `status=bounced (reason)`: one line per failed recipient, before the line about its DSN.
    for (const r of failed) {
      this.log.info('relay: bounced', {
        id,
        ...txOf(entry),
        to: r.address,
        relay: relayOf.get(r) ?? r.remoteMta ?? 'none',
        delay: delaySeconds(entry),
        dsn: r.statusCode ?? '5.0.0',
        status: expired && r.statusCode === '4.4.7' ? 'expired' : 'bounced',
        reason: r.lastError ?? 'delivery failed',
      });
    }
    if (silent.size) this.log.info('relay: no failure DSN (NOTIFY)', { id, ...txOf(entry), recipients: [...silent].map((r) => r.address).join(',') });
    let bounceId: string | undefined;
    let heldNow = false;
    if (toBounce.length) {
      bounceId = await this.bounce(entry, toBounce, expired ? 'expired' : 'failed');
      heldNow = !bounceId;
      for (const r of toBounce) {
        if (bounceId) r.notified = true;
        else r.status = 'held';
      }
    }

    // "Relayed" DSNs for NOTIFY=SUCCESS recipients the next hop will not report on.
    const owed = entry.recipients.filter((r) => r.status === 'delivered' && r.notified === false);
    // Handed to our own storage plugins (deliverLocally): delivered, not relayed.
    const deliveredHere = owed.filter((r) => r.remoteMta === LOCAL_MTA);
    const relayed = owed.filter((r) => r.remoteMta !== LOCAL_MTA);
    if (deliveredHere.length) await this.notify(entry, deliveredHere, 'delivered', entry.sender, 'bounce');
    if (relayed.length) await this.notify(entry, relayed, 'relayed', entry.sender, 'bounce');
    for (const r of owed) {
      r.notified = true;
      r.response = undefined;
    }

    // Optional delayed-delivery warning, once per message, only to a real sender.
    const warnAfter = this.options.delayWarning;
    if (warnAfter !== undefined && !entry.warned && entry.kind === 'message' && entry.sender !== '' && now - entry.created >= warnAfter) {
      const pending = entry.recipients.filter((r) => r.status === 'pending');
      // Recipients whose NOTIFY leaves DELAY out get no warning (RFC 3461 §4.1).
      const still = pending.filter((r) => !r.notify || r.notify.includes('DELAY'));
      if (still.length) await this.notify(entry, still, 'delayed', entry.sender, 'bounce');
      if (pending.length) entry.warned = true;
    }

    const finished = entry.recipients.every(isSettled);
    if (finished) {
      await this.store.remove(id);
      this.index.delete(id);
    } else {
      await this.store.write(entry);
      if (entry.recipients.some((r) => r.status === 'pending')) this.schedule(id, entry.nextAttempt);
      else {
        this.index.delete(id);
        // Held now: bounce() said why. Held earlier, the last pending recipients settled now: say it once more.
        // Addresses come from clients: in fields (escaped), never in the message text.
        if (!heldNow) this.log.error('relay: message held in the queue', { id, ...txOf(entry), reason: this.heldReason(entry), recipients: entry.recipients.filter((r) => r.status === 'held').map((r) => r.address).join(',') });
      }
    }

    for (const d of delivered) await this.emit('delivered', { id, recipients: d.recipients, host: d.host, response: d.response });
    for (const d of deferred) {
      this.log.info('relay: deferred', {
        id,
        ...txOf(entry),
        to: d.recipients.join(','),
        relay: d.relay ?? 'none',
        delay: delaySeconds(entry),
        dsn: d.status,
        status: 'deferred',
        reason: d.error,
        attempts: entry.attempts,
        nextAttempt: new Date(entry.nextAttempt).toISOString(),
      });
      await this.emit('deferred', { id, recipients: d.recipients, error: d.error, nextAttempt: entry.nextAttempt, attempts: entry.attempts });
    }
    if (failed.length) {
      await this.emit('bounced', {
        id,
        recipients: failed.map((r) => ({ address: r.address, error: r.lastError ?? '', ...(silent.has(r) ? { suppressed: true as const } : {}) })),
        bounceId,
        reason: expired ? 'expired' : 'failed',
      });
    }
  }

  private async emit(name: 'delivered' | 'deferred' | 'bounced', event: unknown): Promise<void> {
    const hook = this.hooks[name] as { isUsed(): boolean; promise(e: unknown): Promise<void> };
    if (!hook.isUsed()) return;
    try {
      await hook.promise(event);
    } catch (error) {
      this.log.error(`relay: a ${name} tap failed`, { error });
    }
  }

  /** Wait before attempt n+1: the schedule's n-th step (the last repeats), ± jitter. */
  private delay(attempts: number): number {
    const { schedule, jitter } = this.options.retry;
    const base = schedule[Math.min(attempts - 1, schedule.length - 1)]!;
    return Math.max(0, Math.round(base * (1 + jitter * (Math.random() * 2 - 1))));
  }

  /** Deliver some recipients of one domain: route, then host after host until one answers. */
  private async deliver(entry: QueueEntry, domain: string, recipients: QueueRecipient[]): Promise<Map<QueueRecipient, Outcome>> {
    const all = (o: Outcome) => new Map(recipients.map((r) => [r, o] as const));
    if (this.local?.isLocalDomain(domain)) return this.deliverLocally(entry, recipients);
    // A quoted local part may hold `<` or `>` (`"a>b"@example.org`, valid RFC 5321), but the
    // SMTP client (nodemailer) refuses to put such an address into a command, for the whole
    // transaction, and no retry changes that: the address fails for good (5.1.3, 5.1.7 for
    // the sender), its co-recipients are sent as usual.
    if (!sendable(entry.sender)) {
      return all({ kind: 'permanent', error: `the sender address ${entry.sender} cannot be sent over SMTP by this relay (it contains < or >)`, status: '5.1.7' });
    }
    const unsendable = recipients.filter((r) => !sendable(r.address));
    if (unsendable.length) {
      const rest = recipients.filter((r) => sendable(r.address));
      const out = rest.length ? await this.deliver(entry, domain, rest) : new Map<QueueRecipient, Outcome>();
      for (const r of unsendable) out.set(r, { kind: 'permanent', error: `${r.address}: this relay cannot send an address that contains < or > over SMTP`, status: '5.1.3' });
      return out;
    }
    let r;
    try {
      r = await route(domain, this.options, this.dns, this.isOwnAddress, this.hostname.toLowerCase().replace(/\.$/, ''));
    } catch (error) {
      return all({ kind: 'temporary', error: `routing failed: ${(error as Error).message}` });
    }
    if (r.kind === 'permanent') return all({ kind: 'permanent', error: r.error, status: r.status });
    if (r.kind === 'temporary') return all({ kind: 'temporary', error: r.error });

    let last: Outcome = { kind: 'temporary', error: 'no host tried' };
    for (const hop of r.hops) {
      const where = hopName(hop);
      let result: SendResult;
      try {
        result = await this.pool.send(
          hop,
          {
            from: entry.sender,
            to: recipients.map((x) => x.address),
            size: entry.size,
            use8BitMime: entry.bodyType !== '7BIT',
            smtputf8: entry.smtputf8,
            ...(entry.dsn ? { dsn: entry.dsn } : {}),
            rcptParams: rcptParams(recipients),
          },
          () => createReadStream(this.store.emlPath(entry.id)),
        );
      } catch (error) {
        if (!(error instanceof TransactionError)) {
          last = { kind: 'temporary', error: `${where}: ${oneLine(String((error as Error)?.message ?? error))}`, host: hop.name, relay: where };
          continue;
        }
        if (error.connecting) {
          // RFC 5321 §5.1: a host that cannot be reached or refuses the session → the next one.
          last = { kind: 'temporary', error: `${where}: ${error.message}`, host: hop.name, relay: where };
          continue;
        }
        // The server answered the transaction: that answer is final for this attempt.
        const out = new Map<QueueRecipient, Outcome>();
        const byAddr = new Map(error.recipients.map((f) => [f.address, f] as const));
        for (const rc of recipients) {
          const f = byAddr.get(rc.address);
          if (f) out.set(rc, f.code >= 500 ? { kind: 'permanent', error: f.response, status: enhancedStatus(f.response, 5), host: hop.name, relay: where } : { kind: 'temporary', error: f.response, host: hop.name, relay: where });
          else if (error.permanent) out.set(rc, { kind: 'permanent', error: error.message, status: enhancedStatus(error.message, 5), host: hop.name, relay: where });
          else out.set(rc, { kind: 'temporary', error: error.code ? error.message : `${where}: ${error.message}`, host: hop.name, relay: where });
        }
        return out;
      }
      const out = new Map<QueueRecipient, Outcome>();
      const rejected = new Map(result.rejected.map((f) => [f.address, f] as const));
      for (const rc of recipients) {
        const f = rejected.get(rc.address);
        if (!f) out.set(rc, { kind: 'delivered', host: where, mta: hop.name, response: result.response, dsn: result.dsn });
        else if (f.code >= 500) out.set(rc, { kind: 'permanent', error: f.response, status: enhancedStatus(f.response, 5), host: hop.name, relay: where });
        else out.set(rc, { kind: 'temporary', error: f.response, host: hop.name, relay: where });
      }
      return out;
    }
    return all(last);
  }

  /**
   * Recipients in one of the gateway's local domains (the sender of a bounced message
   * is one of our users): the gateway's own plugins deliver them, as Postfix's bounce
   * daemon hands its mail to local delivery. Their answer counts like a next hop's.
   */
  private async deliverLocally(entry: QueueEntry, recipients: QueueRecipient[]): Promise<Map<QueueRecipient, Outcome>> {
    const out = new Map<QueueRecipient, Outcome>();
    const outcome = (reply: Reply): Outcome => {
      const text = replyText(reply);
      return reply.code >= 500 ? { kind: 'permanent', error: text, status: reply.enhanced ?? '5.0.0', host: LOCAL_MTA } : { kind: 'temporary', error: text, host: LOCAL_MTA };
    };
    try {
      const result = await this.local!.submit({
        sender: entry.sender,
        recipients: recipients.map((r) => r.address),
        body: createReadStream(this.store.emlPath(entry.id)),
        bodyType: entry.bodyType === '7BIT' ? '7BIT' : '8BITMIME',
      });
      const refused = new Map(result.refused.map((f) => [f.recipient, f.reply] as const));
      for (const rc of recipients) {
        const reply = refused.get(rc.address);
        if (reply) out.set(rc, outcome(reply));
        else if (result.queued) out.set(rc, { kind: 'delivered', host: LOCAL_MTA, mta: LOCAL_MTA, response: replyText(result.reply), dsn: false });
        else out.set(rc, outcome(result.reply));
      }
    } catch (error) {
      const text = `local delivery failed: ${oneLine(String((error as Error)?.message ?? error))}`;
      // submit() refuses an address it cannot put into a command (TypeError): no retry will change that.
      const failure: Outcome = error instanceof TypeError ? { kind: 'permanent', error: text, status: '5.1.3', host: LOCAL_MTA } : { kind: 'temporary', error: text, host: LOCAL_MTA };
      for (const rc of recipients) out.set(rc, failure);
    }
    return out;
  }

  /**
   * Queue a DSN for failed recipients: to the sender; for a message from `<>` (a bounce)
   * a double bounce to the postmaster; a failed double bounce is held. Returns the
   * id of the queued notification, or undefined when the recipients must be held.
   */
  private async bounce(entry: QueueEntry, failed: QueueRecipient[], reason: 'failed' | 'expired'): Promise<string | undefined> {
    let to: string;
    let kind: QueueEntry['kind'];
    if (entry.sender !== '' && entry.kind === 'message') {
      to = entry.sender;
      kind = 'bounce';
    } else if (entry.kind !== 'double-bounce' && this.options.postmaster) {
      to = this.options.postmaster;
      kind = 'double-bounce';
    } else {
      this.log.error('relay: held in the queue', { id: entry.id, ...txOf(entry), reason: this.heldReason(entry), recipients: failed.map((r) => r.address).join(',') });
      return undefined;
    }
    return this.notify(entry, failed, reason, to, kind);
  }

  /** Why failed recipients of `entry` are held instead of bounced (see bounce()). */
  private heldReason(entry: QueueEntry): string {
    const what = entry.kind === 'double-bounce' ? 'a double bounce' : entry.kind === 'bounce' ? 'a delivery status notification' : 'a message from <>';
    const to = entry.recipients.map((r) => r.address).join(',');
    const hint = '(`mailgate queue retry ID` sends it again, `delete ID` drops it)';
    if (entry.kind === 'double-bounce') return `the double bounce to the postmaster (${to}) could not be delivered; nobody is left to notify ${hint}`;
    if (!this.options.postmaster) return `${what} to ${to} could not be delivered and no postmaster is configured for a double bounce ${hint}`;
    return `${what} to ${to} could not be delivered ${hint}`;
  }

  /** Build and queue a DSN about `recipients` of `entry`, addressed to `to`. */
  private async notify(entry: QueueEntry, list: QueueRecipient[], reason: 'failed' | 'expired' | 'delayed' | 'relayed' | 'delivered', to: string, kind: QueueEntry['kind']): Promise<string> {
    const bounceId = newQueueId();
    const retryUntil = new Date(entry.created + this.options.retry.maxAge);
    const relayed = reason === 'relayed' || reason === 'delivered';
    const recipients: ReportedRecipient[] = list.map((r) => ({
      address: r.address,
      status: relayed ? '2.0.0' : (r.statusCode ?? (reason === 'delayed' ? '4.0.0' : '5.0.0')),
      diagnostic: relayed ? (r.response ?? '250 relayed') : (r.lastError ?? (reason === 'delayed' ? 'delivery delayed' : 'delivery failed')),
      ...(r.remoteMta && r.remoteMta !== LOCAL_MTA ? { remoteMta: r.remoteMta } : {}),
      ...(reason === 'delayed' ? { willRetryUntil: retryUntil } : {}),
      ...(r.orcpt && kind === 'bounce' ? { orcpt: r.orcpt } : {}),
    }));
    // ENVID and RET are the sender's: used in what goes back to the sender, not in a postmaster copy.
    const toSender = kind === 'bounce';
    const body = await buildDeliveryReport({
      hostname: this.hostname,
      queueId: entry.id,
      reportId: bounceId,
      to,
      originalSender: entry.sender,
      arrival: new Date(entry.created),
      recipients,
      reason,
      doubleBounce: kind === 'double-bounce',
      original: this.store.emlPath(entry.id),
      ...(toSender && entry.dsn?.envid !== undefined ? { envid: entry.dsn.envid } : {}),
      ...(toSender && entry.dsn?.ret ? { ret: entry.dsn.ret } : {}),
    });
    const domain = (to.split('@').pop() ?? '').toLowerCase();
    const now = Date.now();
    await this.store.add(
      {
        version: 1,
        id: bounceId,
        sender: '',
        created: now,
        nextAttempt: now,
        attempts: 0,
        size: body.length,
        bodyType: /[\x80-\xff]/.test(body.toString('latin1')) ? '8BITMIME' : '7BIT',
        smtputf8: false,
        kind,
        recipients: [{ address: to, domain, status: 'pending', attempts: 0 }],
      },
      body,
    );
    const what = reason === 'delayed' ? 'delay warning' : relayed ? '"relayed" DSN' : kind === 'bounce' ? 'bounce' : 'double bounce to postmaster';
    this.log.info(`relay: ${what} queued`, { id: entry.id, ...txOf(entry), bounce: bounceId, to, recipients: list.map((r) => r.address).join(',') });
    this.schedule(bounceId, now);
    return bounceId;
  }

  // ---- queue management (also reached through control files from `mailgate queue`) ----

  async deleteNow(id: string): Promise<boolean> {
    if (this.busy.has(id)) {
      this.deleteAfter.add(id);
      return true;
    }
    // Out of the schedule, and busy, before anything is awaited: a pump() meanwhile (one
    // runs right after an attempt that was asked to delete its message) must not start
    // the message again; it would write its envelope back as a body-less ghost.
    this.index.delete(id);
    this.busy.add(id);
    try {
      const existed = await this.store.exists(id);
      await this.store.remove(id);
      return existed;
    } finally {
      this.busy.delete(id);
    }
  }

  /** Retry now: held and pending recipients become pending and due. */
  async retry(id: string): Promise<boolean> {
    if (this.busy.has(id)) {
      this.retryAfter.add(id);
      return true;
    }
    // busy while its envelope is rewritten: no attempt may start on it meanwhile
    this.busy.add(id);
    let due: number | undefined;
    try {
      const loaded = await this.store.load(id);
      if (!loaded) return false;
      if ('corrupt' in loaded) throw new Error(`corrupt envelope (${loaded.corrupt})`);
      const entry = loaded.entry;
      for (const r of entry.recipients) if (r.status === 'held') r.status = 'pending';
      entry.nextAttempt = Date.now();
      await this.store.write(entry);
      if (entry.recipients.some((r) => r.status === 'pending')) due = entry.nextAttempt;
      return true;
    } finally {
      this.busy.delete(id);
      if (due !== undefined) this.schedule(id, due);
    }
  }

  /**
   * Control requests written by `mailgate queue` into `<queueDir>/ctl/`: `flush`,
   * `delete-ids ID…`, `retry-ids ID…` (answered with one `ID result` line per id), and
   * the single-id `delete ID`, `retry ID` of older versions of the command.
   */
  private async pollControl(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.store.ctlDir)).filter((n) => n.endsWith('.req')).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(this.store.ctlDir, name);
      let result = 'ok';
      try {
        const [op, ...ids] = (await readFile(path, 'utf8')).trim().split(/\s+/);
        const id = ids[0];
        if ((op === 'retry-ids' || op === 'delete-ids') && ids.length) {
          const lines: string[] = [];
          for (const each of ids) {
            const done = await this.control(op === 'retry-ids' ? 'retry' : 'delete', each);
            // One line per message, as postsuper logs each one it removes.
            this.log.info('relay: queue command', { op: op.slice(0, -4), id: each, result: done });
            lines.push(`${each} ${done}`);
          }
          result = lines.join('\n');
        } else {
          if (op === 'flush') result = `ok ${this.flush()}`;
          else if ((op === 'retry' || op === 'delete') && id && ids.length === 1) result = await this.control(op, id);
          else result = 'bad request';
          this.log.info('relay: queue command', { op, id, result });
        }
      } catch (error) {
        result = `error ${(error as Error).message}`;
      }
      await writeFile(path.replace(/\.req$/, '.res'), result, { mode: FILE_MODE }).catch(() => undefined);
      await rm(path, { force: true });
    }
  }

  /** One id of a control request: `ok`, `not found`, or `error …` (that id only). */
  private async control(op: 'retry' | 'delete', id: string): Promise<string> {
    if (!isQueueId(id)) return 'not found';
    try {
      const done = op === 'retry' ? await this.retry(id) : await this.deleteNow(id);
      return done ? 'ok' : 'not found';
    } catch (error) {
      return `error ${oneLine((error as Error).message)}`;
    }
  }
}

/**
 * `tx`, the core's transaction id the client was told (`250 … queued as MWYAIZX16.1`), for
 * every log line about a message: `grep MWYAIZX16.1` follows it from `relay: queued` to
 * its `sent`/`deferred`/`bounced` lines. Notifications we generated have none.
 */
function txOf(entry: QueueEntry): { tx?: string } {
  return entry.receivedTx ? { tx: entry.receivedTx } : {};
}

/** Seconds since the message arrived, as Postfix's `delay=`. */
function delaySeconds(entry: QueueEntry): number {
  return Math.round((Date.now() - entry.created) / 10) / 100;
}

/** Nothing more to do for this recipient: delivered and reported as asked, or failed and reported. */
function isSettled(r: QueueRecipient): boolean {
  return (r.status === 'delivered' && r.notified !== false) || (r.status === 'failed' && r.notified === true);
}

/** A failure DSN to the sender is due unless NOTIFY was given without FAILURE (NEVER included). */
function wantsFailureDsn(entry: QueueEntry, r: QueueRecipient): boolean {
  // A failed bounce goes to the postmaster (double bounce) whatever the recipient asked.
  if (entry.sender === '' || entry.kind !== 'message') return true;
  return !r.notify || r.notify.includes('FAILURE');
}

/** NOTIFY=SUCCESS from a real sender: a hop that does not take it over gets us a "relayed" DSN. */
function wantsRelayedDsn(entry: QueueEntry, r: QueueRecipient): boolean {
  return entry.kind === 'message' && entry.sender !== '' && r.notify?.includes('SUCCESS') === true;
}

/** Whether the SMTP client can write `address` into MAIL/RCPT (nodemailer refuses CR, LF, `<` and `>`). */
function sendable(address: string): boolean {
  return !/[\r\n<>]/.test(address);
}

/** A recipient's RCPT parameters for a next hop that does DSN: `NOTIFY=… ORCPT=…`, or undefined. */
function rcptParams(recipients: QueueRecipient[]): Map<string, string> | undefined {
  let map: Map<string, string> | undefined;
  for (const r of recipients) {
    // ORCPT goes on as ASCII xtext, up to ten times as long as a raw-UTF-8 one received; past
    // RFC 3461's 500 characters a next hop refuses the whole RCPT, so then it is left out.
    const orcpt = r.orcpt ? formatOrcpt(r.orcpt) : undefined;
    const params = [...(r.notify ? [`NOTIFY=${r.notify.join(',')}`] : []), ...(orcpt && orcpt.length <= MAX_ORCPT_LENGTH ? [`ORCPT=${orcpt}`] : [])];
    if (params.length) (map ??= new Map()).set(r.address, params.join(' '));
  }
  return map;
}

/** The destination key of everything sent through the smarthost (a domain name cannot have brackets). */
const SMARTHOST = '[smarthost]';

/** The "host" of a recipient handed to the gateway's own storage plugins (deliverLocally). */
const LOCAL_MTA = 'local';

/** A reply as one line of text, `550 5.1.1 <a@b>: User unknown`. */
function replyText(reply: Reply): string {
  const text = typeof reply.text === 'string' ? reply.text : reply.text.join(' ');
  return oneLine(`${reply.code} ${reply.enhanced ? `${reply.enhanced} ` : ''}${text}`);
}
