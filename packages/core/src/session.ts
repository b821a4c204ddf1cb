import type { Address, Params } from './smtp/address.js';
import type { RecipientDsn, TransactionDsn } from './smtp/dsn.js';
import type { Reply } from './smtp/reply.js';
import type { Message } from './spool/message.js';
import type { Verdict } from './verdict.js';
import type { Logger } from './log.js';

/**
 * Typed per-session, per-transaction and per-recipient data. They are empty here;
 * plugins add their fields by declaration merging (like unified's `Data`):
 *
 *   declare module '@mailgate/core' {
 *     interface TransactionData { spamScore?: number }
 *   }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}
/**
 * Per-transaction notes. `spam` is the one the core defines, for the same reason as
 * `relayAllowed` below: a spam filter (plugin-spam) sets it at `data` and a storage
 * plugin that never imports it reads it (plugin-maildir files flagged mail into a
 * spam folder). A filter may add its own fields to `SpamVerdict` by declaration merging.
 */
export interface TransactionData {
  spam?: SpamVerdict;
}
/** What a spam filter concluded about the message. */
export interface SpamVerdict {
  /** The filter's total score. */
  score: number;
  /** At or over the filter's tag threshold: the message is marked as spam. */
  flagged: boolean;
}
/**
 * Per-recipient notes. `relayAllowed` is the one the core defines, because two
 * plugins that never import each other meet on it: an access plugin (plugin-acl)
 * sets it at `rcpt` for a non-local recipient it lets through (authenticated user,
 * trusted network), and a relay plugin claims only recipients that carry it.
 */
export interface RecipientData {
  relayAllowed?: boolean;
}

/** One line of the transaction's audit trail: which plugin said what at which step. */
export interface AuditEntry {
  hook: string;
  plugin: string;
  verdict: Verdict['kind'] | 'claim' | 'error' | 'timeout';
  /** Internal reason (never the client-facing text alone). */
  reason?: string;
  /** Recipient the entry is about, for rcpt and claim entries. */
  recipient?: string;
  ms: number;
}

export interface TlsInfo {
  protocol: string | null;
  cipher: string | null;
  /** True for implicit-TLS listeners (port 465 style), false after STARTTLS. */
  implicit: boolean;
}

/** One accepted (or being decided) recipient of a transaction. */
export class Recipient {
  /** Name of the plugin that will deliver this recipient (see DESIGN: "Who delivers which recipient"). */
  claimedBy: string | undefined;
  readonly data: RecipientData = {};
  /**
   * RCPT's DSN parameters (RFC 3461): NOTIFY and ORCPT, decoded. Undefined when the
   * client sent neither. A plugin that relays the message passes them on; one that
   * reports on delivery itself honours `notify` (absent means the usual: failures).
   */
  readonly dsn: RecipientDsn | undefined;

  constructor(
    readonly address: Address,
    readonly params: Params,
    /** True for RCPT TO:<postmaster> and postmaster@any (RFC 5321 §4.5.1). */
    readonly postmaster: boolean,
    /** RFC 3461 NOTIFY/ORCPT, decoded by the engine from `params`. */
    dsn?: RecipientDsn,
  ) {
    this.dsn = dsn;
  }

  /** The mailbox as text, `local@domain`. */
  get text(): string {
    return this.address.address;
  }
}

/**
 * How a transaction ended (`Transaction.outcome`, set before `reset`):
 *
 * - `message`: its body was received (DATA, BDAT LAST, or the BDAT chunk that
 *   went over the size limit) and the client got `reply`;
 * - `refused`: a `mail` tap refused the sender;
 * - `rset`, `helo` (a new HELO/EHLO), `starttls`: the client started over;
 * - `quit`, `disconnect`: the session ended in the middle of the transaction
 *   (a timeout, a shutdown or an error limit are `disconnect` too).
 */
export interface TransactionOutcome {
  readonly end: 'message' | 'refused' | 'rset' | 'helo' | 'starttls' | 'quit' | 'disconnect';
  /** For `message`: the final reply the client got for it (250, or the 4xx/5xx refusal). */
  readonly reply?: Reply;
  /**
   * True only when every `queue` tap succeeded and the client got 250: the message
   * is now the gateway's responsibility. False means the client was told (or will
   * assume) it was not taken, and will retry it or give up; work done for it in
   * `queue` should be undone.
   */
  readonly queued: boolean;
}

/** One MAIL FROM … end of data. */
export class Transaction {
  readonly recipients: Recipient[] = [];
  readonly data: TransactionData = {};
  readonly audit: AuditEntry[] = [];
  message: Message | undefined;
  /** Body type from MAIL's BODY= parameter (RFC 6152), and whether SMTPUTF8 was asked for. */
  readonly bodyType: '7BIT' | '8BITMIME' | 'BINARYMIME';
  readonly smtputf8: boolean;
  /** Size announced with SIZE= (RFC 1870), if any. */
  readonly declaredSize: number | undefined;
  /** MAIL's DSN parameters (RFC 3461): RET and ENVID, decoded. Undefined when the client sent neither. */
  readonly dsn: TransactionDsn | undefined;
  /**
   * How the transaction ended, set by the core just before the `reset` hook runs
   * (undefined before that). A `reset` tap reads it to undo or keep its work.
   */
  outcome: TransactionOutcome | undefined;

  constructor(
    readonly id: string,
    /** null for the null reverse-path `<>` (bounces). */
    readonly sender: Address | null,
    readonly params: Params,
    /** RFC 3461 RET/ENVID, decoded by the engine from `params`. */
    dsn?: TransactionDsn,
  ) {
    const body = String(params.get('BODY') ?? '7BIT').toUpperCase();
    this.bodyType = body === '8BITMIME' || body === 'BINARYMIME' ? body : '7BIT';
    this.smtputf8 = params.has('SMTPUTF8');
    const size = params.get('SIZE');
    this.declaredSize = typeof size === 'string' ? Number(size) : undefined;
    this.dsn = dsn;
  }

  /** The reverse-path as text, '' for the null sender. */
  get senderText(): string {
    return this.sender ? this.sender.address : '';
  }

  /** Recipients a given plugin claimed: what its `queue` tap must deliver. */
  claimedBy(plugin: string): Recipient[] {
    return this.recipients.filter((r) => r.claimedBy === plugin);
  }
}

/**
 * The transaction as `data` and `queue` taps get it: the body is spooled, so `message`
 * is always there (`tx.message.stream()` needs no `!` or guard). Other hooks get a
 * plain `Transaction`, whose `message` is undefined until the body is in.
 */
export type TransactionWithMessage = Transaction & { readonly message: Message };

/** The connection-level state plugins see. */
export interface Session {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * True for a message the gateway made itself and handed to its own plugins with
   * `gateway.submit()` (a bounce or delivery report), like Postfix's pickup: there is
   * no client, so the client-policy hooks (connect, helo, mail, rcpt, data) are not
   * run, nor `smtp.requireTls`, and errors do not count toward `maxErrors`; `claim`,
   * `queue`, `reset`, `quit` and `disconnect` are, and a non-local recipient is
   * `relayAllowed`. Only `gateway.submit()` makes such a session.
   */
  readonly internal: boolean;
  /** Name given with HELO/EHLO, once given. */
  readonly heloName: string | undefined;
  readonly esmtp: boolean;
  readonly tls: TlsInfo | undefined;
  /** Authenticated user name, once AUTH succeeded. */
  readonly user: string | undefined;
  readonly transaction: Transaction | undefined;
  readonly data: SessionData;
  /** Messages accepted in this session so far. */
  readonly messageCount: number;
  /** Count of error replies sent so far (for error-rate limits). */
  readonly errorCount: number;
  readonly log: Logger;
}
