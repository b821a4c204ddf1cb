import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { accept, buildDeliveryReport, definePlugin, HookStage, reject, tempfail, type Logger, type PluginGatewayView, type Recipient, type Transaction, type Verdict } from '@mailgate/core';
import { MaildirWriter, type DeliveryGroup } from './maildir.js';
import { Mapper, type Target } from './mapping.js';
import { maildirOptionsSchema, type QuotaLimit } from './options.js';
import { fits, QuotaStore } from './quota.js';

/** The delivery report's queue tap runs after every other queue tap (those at stage LATE included). */
const REPORT_STAGE = HookStage.LATE + 1;

/** What this plugin notes on a recipient it claimed: where it will be delivered. */
export interface MaildirRecipient {
  /** The Maildirs (distinct) this recipient is delivered into, resolved once at RCPT. */
  targets: Target[];
}

/** What this plugin notes on a transaction it delivered: the files it put into new/. */
export interface MaildirTransaction {
  files: string[];
  /** When the message was delivered (the report's Arrival-Date). */
  arrival: Date;
  /** Quota deltas recorded, per mailbox (to undo them with the files). */
  quota: Array<{ mailbox: string; bytes: number; messages: number; limit: QuotaLimit }>;
}

declare module '@mailgate/core' {
  interface RecipientData {
    /** Set by @mailgate/plugin-maildir on the recipients it claimed. */
    maildir?: MaildirRecipient;
  }
  interface TransactionData {
    /** Set by @mailgate/plugin-maildir once it delivered the message. */
    maildir?: MaildirTransaction;
  }
}

export const PLUGIN_NAME = '@mailgate/plugin-maildir';

/**
 * `@mailgate/plugin-maildir`: claims local recipients at RCPT (refusing unknown and
 * unsafe addresses, and full mailboxes) and delivers each accepted message into
 * their Maildirs before the 250.
 */
export const maildirPlugin = definePlugin({
  name: PLUGIN_NAME,
  options: maildirOptionsSchema,
  core: '0.x',
  setup({ name, options, tap, gateway, log, configDir, onClose, onListen }) {
    const root = options.root === undefined ? undefined : resolve(configDir, options.root);
    const mailbox = options.mailbox === undefined ? undefined : resolve(configDir, options.mailbox);
    const mapper = new Mapper({ options, root, mailbox, isLocalDomain: (d) => gateway.isLocalDomain(d), listLocalDomains: () => gateway.listLocalDomains() });
    for (const d of mapper.listedDomains) gateway.addLocalDomain(d);
    // With `domains` omitted, the local domains come from other plugins, which may declare
    // them after our setup: say once they all have where a bare <postmaster> goes.
    onListen(() => {
      if (options.domains !== undefined || options.postmaster !== undefined) return;
      const postmaster = mapper.postmasterAddress();
      if (postmaster !== undefined) log.info('a bare RCPT TO:<postmaster> is delivered as', { postmaster });
      else log.warn('no local domain for a bare RCPT TO:<postmaster> (RFC 5321 4.5.1): it gets 550; set `postmaster:` or `domains:`');
    });
    const writer = new MaildirWriter({
      fileMode: options.fileMode,
      dirMode: options.dirMode,
      fsync: options.fsync,
      cleanup: options.cleanup,
      log,
      umask: currentUmask(),
      ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
    });
    const quotas = new QuotaStore({ fileMode: options.fileMode, uniqueName: () => writer.uniqueName(0) });
    const deliveredTo = options.deliveredTo === true ? 'final' : options.deliveredTo;
    const deliveryBudget = options.queueTimeout - Math.min(5_000, options.queueTimeout * 0.2);
    const claimed = accept();
    const debug = log.enabled('debug');

    /** Usage of a mailbox's quota, or undefined when it cannot be read (the check is then skipped: fail open, logged). */
    const usage = async (dir: string, limit: QuotaLimit) => {
      try {
        return await quotas.usage(dir, limit);
      } catch (error) {
        log.warn('cannot read the quota usage; not enforcing it for this message', { mailbox: dir, error });
        return undefined;
      }
    };

    tap('claim', async (_session, tx, rcpt): Promise<Verdict | undefined> => {
      const resolution = await mapper.resolve(rcpt.address.local, rcpt.address.domain, rcpt.postmaster);
      switch (resolution.kind) {
        case 'skip':
          return undefined;
        case 'unknown':
          return reject(`<${rcpt.text}>: Recipient address rejected: User unknown`, { code: 550, enhanced: '5.1.1', reason: resolution.reason });
        case 'unsafe':
          return reject(`<${rcpt.text}>: Recipient address rejected: Bad destination mailbox address`, { code: 550, enhanced: '5.1.3', reason: resolution.reason });
        case 'error':
          return tempfail(`<${rcpt.text}>: Recipient address rejected: Temporary lookup failure`, { code: 451, enhanced: '4.3.5', reason: resolution.reason });
        case 'deliver':
          break;
      }
      // Quota: refuse here, per recipient, whenever we can tell (full now, or too small for the SIZE= announced).
      const add = { bytes: Math.max(tx.declaredSize ?? 0, 1), messages: 1 };
      const checked = new Set<string>();
      for (const t of resolution.targets) {
        if (!t.quota || checked.has(t.mailbox)) continue;
        checked.add(t.mailbox);
        const used = await usage(t.mailbox, t.quota);
        if (used && !fits(used, t.quota, add)) {
          return tempfail(`<${rcpt.text}>: Mailbox full, try again later`, {
            code: 452,
            enhanced: '4.2.2',
            reason: `over quota: ${t.mailbox} uses ${used.bytes} bytes / ${used.messages} messages`,
          });
        }
      }
      rcpt.data.maildir = { targets: resolution.targets };
      return claimed;
    });

    tap('queue', async (_session, tx): Promise<Verdict | undefined> => {
      const started = Date.now();
      const recipients = tx.claimedBy(name);
      const message = tx.message;
      if (recipients.length === 0 || !message) return undefined;
      // Flagged spam goes to the spam folder of each mailbox instead of wherever it was headed.
      const folder = options.spamFolder !== undefined && tx.data.spam?.flagged ? `.${options.spamFolder}` : undefined;
      const groups = groupTargets(tx, recipients, options.returnPath, deliveredTo, folder);
      if (groups.length === 0) return undefined;

      // Quota at end of data: only now is the size known for clients that sent no SIZE=.
      const quotaTargets = new Map<string, { limit: QuotaLimit; bytes: number; messages: number }>();
      for (const group of groups) {
        const fileSize = group.header.length + message.size;
        for (const target of group.targets) {
          if (!target.quota) continue;
          const q = quotaTargets.get(target.mailbox) ?? { limit: target.quota, bytes: 0, messages: 0 };
          q.bytes += fileSize;
          q.messages += 1;
          quotaTargets.set(target.mailbox, q);
        }
      }
      for (const [dir, q] of quotaTargets) {
        const used = await usage(dir, q.limit);
        if (used && !fits(used, q.limit, q)) {
          return reject('Mailbox full: requested mail action aborted, exceeded storage allocation', {
            code: 552,
            enhanced: '5.2.2',
            reason: `over quota: ${dir} uses ${used.bytes} bytes / ${used.messages} messages, message needs ${q.bytes} bytes`,
          });
        }
      }

      let files: string[];
      try {
        files = await writer.deliver(message, groups, started + deliveryBudget);
      } catch (error) {
        // which mailboxes: one broken Maildir fails the whole transaction, so say which it was
        log.error('maildir delivery failed', { tx: tx.id, recipients: recipients.map((r) => r.text), mailboxes: [...new Set(groups.flatMap((g) => g.dirs))], error });
        return tempfail('Local error in processing, try again later', { code: 451, enhanced: '4.3.0', reason: `maildir delivery failed: ${(error as Error).message}` });
      }
      const quota: MaildirTransaction['quota'] = [];
      for (const [dir, q] of quotaTargets) {
        await quotas.add(dir, q, q.limit).then(
          () => quota.push({ mailbox: dir, bytes: q.bytes, messages: q.messages, limit: q.limit }),
          (error: unknown) => log.warn('cannot update maildirsize', { mailbox: dir, error }),
        );
      }
      tx.data.maildir = { files, arrival: new Date(started), quota };
      if (debug) log.debug('delivered', { tx: tx.id, size: message.size, files });
      return undefined;
    }, { timeout: options.queueTimeout });

    // Report the delivery to the sender of each recipient that asked for it with
    // NOTIFY=SUCCESS (RFC 3461 §5.2.2.1), before the client gets its 250: a crash after the
    // 250 must not lose the report (Postfix keeps the original queued until its report is).
    // A tap of its own, after every other queue tap, so that it runs only once the whole
    // transaction is stored; the report is durable (in the sender's Maildir, or in the
    // relay queue) when it returns. It never fails the transaction: the mail is delivered.
    // So it never outlives its own timeout either (that would be a 451 with the report
    // already out, and a second report on the retry): past the delivery budget the client
    // gets its 250 and the report finishes in the background (a shutdown waits for it).
    // (synchronous unless there is a report to send: the common case costs no promise or timer)
    tap('queue', (_session, tx): undefined | Promise<undefined> => {
      const delivered = tx.data.maildir;
      if (!delivered) return undefined;
      const notify = successNotices(tx, tx.claimedBy(name));
      if (notify.length === 0) return undefined;
      return (async () => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deliveryBudget)));
        const sent = sendDeliveredReport(gateway, log, tx, notify, delivered.arrival);
        if ((await Promise.race([sent, late]).finally(() => clearTimeout(timer))) === 'late') {
          log.warn('delivery report still being stored; the client gets its 250 meanwhile', { tx: tx.id, waited: deliveryBudget });
        }
        return undefined;
      })();
    }, { stage: REPORT_STAGE, timeout: options.queueTimeout });

    // The message was not queued after all (a queue step after ours failed, so the client
    // gets 4xx/5xx and will retry): take it back out of new/, so that the retry does not
    // deliver it twice.
    tap('reset', (_session, tx) => {
      const delivered = tx.data.maildir;
      if (!delivered) return undefined;
      tx.data.maildir = undefined;
      // (synchronous unless there is something to do: the common case costs no promise)
      if (tx.outcome?.queued) return undefined;
      return (async () => {
        const removed = await writer.withdraw(delivered.files);
        for (const q of delivered.quota) {
          await quotas.add(q.mailbox, { bytes: -q.bytes, messages: -q.messages }, q.limit).catch(() => undefined);
        }
        log.warn('a later queue step failed: delivered files withdrawn from new/', { tx: tx.id, files: delivered.files.length, removed });
      })();
    });

    onClose(async () => {
      await writer.close();
      if (writer.stats.files > 0) log.info('maildir delivery totals', { ...writer.stats });
    });
  },
});

/**
 * The recipients (as the client gave them at RCPT, once each: an alias that expanded to
 * several mailboxes is one RCPT) that asked for a success notice, when there is a sender
 * to send it to. Not for mail a spam filter flagged: its sender is most likely forged, and
 * the report (with headers the spammer chose) would go to whoever that names (backscatter).
 */
export function successNotices(tx: Transaction, delivered: readonly Recipient[]): Recipient[] {
  if (tx.sender === null || tx.data.spam?.flagged) return [];
  const seen = new Set<string>();
  return delivered.filter((r) => {
    if (!r.dsn?.notify?.includes('SUCCESS') || !r.data.maildir?.targets.length) return false;
    const key = r.text.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * One "delivered" DSN (RFC 3464, `Action: delivered`, `Status: 2.0.0`) about `recipients`
 * to the transaction's sender, handed to the gateway's own plugins (`gateway.submit()`:
 * a local sender's mailbox, or the relay). Never throws: a report that cannot be made
 * or is not taken is logged.
 */
async function sendDeliveredReport(gateway: PluginGatewayView, log: Logger, tx: Transaction, recipients: readonly Recipient[], arrival: Date): Promise<undefined> {
  const to = tx.senderText;
  const about = recipients.map((r) => r.text);
  try {
    const body = await buildDeliveryReport({
      hostname: gateway.hostname,
      queueId: tx.id,
      reportId: `${tx.id}.${randomBytes(4).toString('hex').toUpperCase()}`,
      to,
      originalSender: to,
      arrival,
      recipients: recipients.map((r) => ({
        address: r.text,
        status: '2.0.0',
        diagnostic: 'delivered to maildir',
        ...(r.dsn?.orcpt ? { orcpt: r.dsn.orcpt } : {}),
      })),
      reason: 'delivered',
      original: tx.message ?? '',
      ...(tx.dsn?.envid !== undefined ? { envid: tx.dsn.envid } : {}),
    });
    const result = await gateway.submit({ sender: '', recipients: [to], body });
    if (result.queued) log.info('delivery report sent', { tx: tx.id, to, recipients: about, report: result.id });
    else log.warn('delivery report not taken', { tx: tx.id, to, recipients: about, reply: result.refused[0]?.reply ?? result.reply });
  } catch (error) {
    log.warn('cannot send the delivery report', { tx: tx.id, to, recipients: about, error });
  }
  return undefined;
}

interface Group extends DeliveryGroup {
  targets: Target[];
}

/**
 * One group per distinct file content. Every Maildir is written once per message,
 * even when several recipients (or aliases) lead to it; recipients whose added
 * headers are identical share one file (hard links).
 */
export function groupTargets(
  tx: Transaction,
  recipients: readonly Recipient[],
  returnPath: boolean,
  deliveredTo: 'final' | 'original' | false,
  /** a Maildir++ folder (".Junk") of each target's mailbox to deliver into instead of the target's own dir */
  folder?: string,
): Group[] {
  const byHeader = new Map<string, Group>();
  const seen = new Set<string>();
  const rp = returnPath ? `Return-Path: <${headerSafe(tx.senderText)}>\r\n` : '';
  for (const rcpt of recipients) {
    for (const planned of rcpt.data.maildir?.targets ?? []) {
      const target = folder === undefined ? planned : { ...planned, dir: join(planned.mailbox, folder) };
      if (seen.has(target.dir)) continue;
      seen.add(target.dir);
      const dt = deliveredTo === 'final' ? target.address : deliveredTo === 'original' ? rcpt.text : undefined;
      const header = dt === undefined ? rp : `${rp}Delivered-To: ${headerSafe(dt)}\r\n`;
      let group = byHeader.get(header);
      if (!group) byHeader.set(header, (group = { header: Buffer.from(header, 'utf8'), dirs: [], targets: [] }));
      group.dirs.push(target.dir);
      group.targets.push(target);
    }
  }
  return [...byHeader.values()];
}

/** Header values never carry CR or LF (the core's parser already refuses them in addresses). */
function headerSafe(text: string): string {
  return text.replace(/[\r\n]/g, '');
}

/** The process umask, read without changing it where Node allows (process.umask() with no argument). */
function currentUmask(): number {
  try {
    return process.umask();
  } catch {
    return 0o022;
  }
}
