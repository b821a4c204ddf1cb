/**
 * The SMTP client side: nodemailer's SMTPConnection (EHLO/HELO, PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, DSN, STARTTLS, AUTH PLAIN/LOGIN, dot-stuffing) wrapped into one
 * promise call per transaction, with reuse of idle connections per destination.
 */
import type { Readable } from 'node:stream';
import { isIP } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Hop } from './routing.js';

export interface ClientSettings {
  heloName: string;
  connectTimeout: number;
  commandTimeout: number;
  idleTimeout: number;
}

export interface Envelope {
  from: string;
  to: string[];
  size: number;
  use8BitMime: boolean;
  /** MAIL's RET and ENVID (sent only if the server advertises DSN). */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
  /**
   * The message needs SMTPUTF8 whatever its addresses (it came with MAIL … SMTPUTF8):
   * MAIL FROM carries the parameter, and a server that does not offer it gets nothing.
   */
  smtputf8?: boolean;
  /** Per recipient address: its RCPT parameters, e.g. `NOTIFY=SUCCESS ORCPT=rfc822;a@b` (sent only with DSN). */
  rcptParams?: ReadonlyMap<string, string>;
}

export interface RecipientFailure {
  address: string;
  code: number;
  response: string;
}

export interface SendResult {
  accepted: string[];
  rejected: RecipientFailure[];
  response: string;
  /** The server advertised DSN and was given our DSN parameters: it reports on delivery from now on. */
  dsn: boolean;
}

/** A failure of the whole transaction (or of the connection). */
export class TransactionError extends Error {
  constructor(
    message: string,
    /** SMTP reply code, if the failure is a reply. */
    readonly code: number | undefined,
    /** Failed while connecting (connect, greeting, EHLO, STARTTLS, AUTH): the next host may be tried. */
    readonly connecting: boolean,
    /** Per-recipient replies when every recipient was refused. */
    readonly recipients: RecipientFailure[] = [],
  ) {
    super(message);
  }
  get permanent(): boolean {
    return this.code !== undefined && this.code >= 500 && this.code !== 503;
  }
}

interface NodemailerError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  recipient?: string;
  rejectedErrors?: NodemailerError[];
}

/**
 * nodemailer's envelope takes one NOTIFY and one ORCPT for all recipients of a
 * transaction; DSN needs them per recipient. SMTPConnection builds each RCPT's
 * parameters in `_getDsnRcptToArgs()` right after queueing that recipient in
 * `_recipientQueue` (pipelined or not), so this per-connection override can look the
 * recipient up. Internal API: checked here, and covered by the relay's DSN tests.
 */
interface RcptArgsInternals {
  _recipientQueue?: unknown;
  _supportedExtensions?: unknown;
  _getDsnRcptToArgs?: () => string;
}

function setRcptParams(conn: SMTPConnection, params: ReadonlyMap<string, string> | undefined): boolean {
  const c = conn as unknown as RcptArgsInternals;
  if (typeof c._getDsnRcptToArgs !== 'function' || !Array.isArray(c._recipientQueue) || !Array.isArray(c._supportedExtensions)) return false;
  c._getDsnRcptToArgs = function (this: RcptArgsInternals): string {
    const queue = this._recipientQueue as string[];
    const args = params?.get(queue[queue.length - 1] ?? '');
    return args && (this._supportedExtensions as string[]).includes('DSN') ? ` ${args}` : '';
  };
  return true;
}

export const NON_ASCII = /[^\x00-\x7f]/;

/** The server's EHLO keywords (nodemailer's parsed list; internal, checked), or undefined if unknown. */
function extensions(conn: SMTPConnection): string[] | undefined {
  const list = (conn as unknown as RcptArgsInternals)._supportedExtensions;
  return Array.isArray(list) ? (list as string[]) : undefined;
}

/**
 * nodemailer adds SMTPUTF8 to MAIL FROM only for a non-ASCII address; a message that
 * needs it for its header (the client sent it with SMTPUTF8) must carry it too (RFC
 * 6531 §3.4). Wraps the connection's internal `_sendCommand` for one transaction (the
 * returned function undoes it); false if that internal is not there.
 */
function addSmtpUtf8ToMail(conn: SMTPConnection): (() => void) | false {
  const c = conn as unknown as { _sendCommand?: (str: string, ...rest: unknown[]) => void };
  const original = c._sendCommand;
  if (typeof original !== 'function') return false;
  c._sendCommand = function (this: unknown, str: string, ...rest: unknown[]) {
    const line = /^MAIL FROM:/i.test(str) && !/\sSMTPUTF8\b/i.test(str) ? `${str} SMTPUTF8` : str;
    return original.call(this, line, ...rest);
  };
  return () => {
    delete c._sendCommand;
    if (c._sendCommand !== original) c._sendCommand = original;
  };
}

interface Idle {
  conn: SMTPConnection;
  timer: NodeJS.Timeout;
}

export function oneLine(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 1000);
}

export class ConnectionPool {
  private readonly idle = new Map<string, Idle[]>();
  private readonly open = new Set<SMTPConnection>();

  constructor(private readonly settings: ClientSettings) {}

  /** Send one transaction to `hop`, on a reused connection if one is idle. */
  async send(hop: Hop, envelope: Envelope, body: () => Readable): Promise<SendResult> {
    const reused = this.take(hop.key);
    if (reused) {
      try {
        return await this.transact(hop, reused, envelope, body());
      } catch (error) {
        // A reused connection the server closed meanwhile: try once more on a fresh one.
        if (!(error instanceof TransactionError) || error.code !== undefined) throw error;
      }
    }
    const conn = await this.connect(hop);
    return this.transact(hop, conn, envelope, body());
  }

  private take(key: string): SMTPConnection | undefined {
    const list = this.idle.get(key);
    while (list?.length) {
      const item = list.pop()!;
      clearTimeout(item.timer);
      if (!item.conn.destroyed) return item.conn;
    }
    return undefined;
  }

  private release(key: string, conn: SMTPConnection): void {
    if (conn.destroyed) return;
    const list = this.idle.get(key) ?? [];
    const timer = setTimeout(() => {
      const i = list.findIndex((x) => x.conn === conn);
      if (i >= 0) list.splice(i, 1);
      this.quit(conn);
    }, this.settings.idleTimeout);
    timer.unref();
    list.push({ conn, timer });
    this.idle.set(key, list);
  }

  private quit(conn: SMTPConnection): void {
    this.open.delete(conn);
    try {
      conn.quit();
    } catch {
      conn.close();
    }
    setTimeout(() => conn.close(), 1000).unref();
  }

  private connect(hop: Hop): Promise<SMTPConnection> {
    // No SNI for an IP address or an address literal (`[192.0.2.1]`, a recipient's domain).
    const servername = isIP(hop.name) || hop.name.startsWith('[') ? undefined : hop.name;
    const conn = new SMTPConnection({
      host: hop.address,
      port: hop.port,
      secure: hop.implicitTls,
      ...(servername ? { servername } : {}),
      requireTLS: hop.tls === 'required',
      ignoreTLS: hop.tls === 'none',
      opportunisticTLS: hop.tls === 'opportunistic',
      name: this.settings.heloName,
      connectionTimeout: this.settings.connectTimeout,
      greetingTimeout: this.settings.connectTimeout,
      socketTimeout: this.settings.commandTimeout,
      socketCloseTimeout: 1000,
      tls: { rejectUnauthorized: hop.tlsVerify, ...(servername ? { servername } : {}) },
      logger: false,
    });
    this.open.add(conn);
    conn.on('error', () => {
      /* reported through the callbacks */
    });
    conn.on('end', () => this.open.delete(conn));
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        conn.close();
        this.open.delete(conn);
        reject(err instanceof TransactionError ? err : toError(err, true, where(hop)));
      };
      // nodemailer reports connection failures as 'error' events, not through the connect callback
      conn.once('error', fail);
      conn.once('end', () => fail(new Error('connection closed')));
      conn.connect((err) => {
        if (err) return fail(err);
        if (!hop.auth) {
          settled = true;
          return resolve(conn);
        }
        if (!conn.secure && !hop.authInsecure) {
          return fail(new TransactionError(`refusing to send credentials to ${hop.name} without TLS (set tls: required)`, undefined, true));
        }
        conn.login({ user: hop.auth.user, pass: hop.auth.pass, ...(hop.auth.method ? { method: hop.auth.method } : {}) }, (loginErr) => {
          if (loginErr) return fail(loginErr);
          settled = true;
          resolve(conn);
        });
      });
    });
  }

  private transact(hop: Hop, conn: SMTPConnection, envelope: Envelope, body: Readable): Promise<SendResult> {
    // RFC 6531 §3.4: a message that needs SMTPUTF8 (its flag, or a non-ASCII address) is
    // never sent to a server that does not offer it: no 8-bit envelope data goes out, the
    // recipients fail for good with 5.6.7, as Postfix does.
    const offered = extensions(conn)?.includes('SMTPUTF8') ?? false;
    /** Send nothing on this connection (it goes back to the pool): the transaction fails with `error`. */
    const giveUp = (error: TransactionError): Promise<never> => {
      this.release(hop.key, conn);
      body.destroy();
      return Promise.reject(error);
    };
    let to = envelope.to;
    const refusedHere: RecipientFailure[] = [];
    if (!offered) {
      const refusal = `554 5.6.7 SMTPUTF8 is required, but was not offered by host ${where(hop)}`;
      if (envelope.smtputf8 || NON_ASCII.test(envelope.from)) return giveUp(new TransactionError(refusal, 554, false));
      // Only some recipients need it (a notification to a non-ASCII address): those fail, the others go.
      to = envelope.to.filter((a) => !NON_ASCII.test(a));
      for (const address of envelope.to) if (NON_ASCII.test(address)) refusedHere.push({ address, code: 554, response: refusal });
      if (!to.length) return giveUp(new TransactionError(refusal, 554, false, refusedHere));
    }
    const restore = offered && envelope.smtputf8 ? addSmtpUtf8ToMail(conn) : undefined;
    // The parameter cannot be added: better not send than send without it.
    if (restore === false) return giveUp(new TransactionError(`cannot send SMTPUTF8 to ${where(hop)} (SMTP client internals changed)`, undefined, false));
    return new Promise<SendResult>((resolve, reject) => {
      let settled = false;
      const fail = (err: NodemailerError) => {
        if (settled) return;
        settled = true;
        restore?.();
        conn.off('error', onError);
        conn.off('end', onEnd);
        body.destroy();
        this.quit(conn);
        reject(toError(err, false, where(hop), [...(err.rejectedErrors ?? []).map(failure), ...refusedHere]));
      };
      const onError = (err: Error) => fail(err);
      const onEnd = () => fail(new Error('connection closed during the transaction'));
      conn.once('error', onError);
      conn.once('end', onEnd);
      // Without a way to give each recipient its NOTIFY/ORCPT, the server is not told any:
      // then it does not take over the reporting (dsn: false), and we report ourselves.
      const perRecipient = setRcptParams(conn, envelope.rcptParams);
      conn.send(
        {
          from: envelope.from || false,
          to,
          size: envelope.size,
          use8BitMime: envelope.use8BitMime,
          ...(envelope.dsn && (envelope.dsn.ret || envelope.dsn.envid) ? { dsn: { ...envelope.dsn } } : {}),
        },
        body,
        (err, info) => {
          if (err || !info) return fail((err as NodemailerError | null) ?? new Error('send failed'));
          if (settled) return;
          settled = true;
          // (before the connection goes back to the pool, where another transaction may take it)
          restore?.();
          conn.off('error', onError);
          conn.off('end', onEnd);
          const rejected = [...((info.rejectedErrors ?? []) as NodemailerError[]).map(failure), ...refusedHere];
          const dsn = perRecipient && (info.ehlo ?? []).some((line: string) => /^DSN\b/i.test(line));
          this.release(hop.key, conn);
          resolve({ accepted: info.accepted, rejected, response: oneLine(info.response), dsn });
        },
      );
    });
  }

  /** Close every connection (QUIT on idle ones). */
  close(): void {
    for (const list of this.idle.values()) for (const { timer } of list) clearTimeout(timer);
    this.idle.clear();
    for (const conn of this.open) {
      try {
        conn.quit();
      } catch {
        /* ignore */
      }
      conn.close();
    }
    this.open.clear();
  }
}

/** A hop as logs name it, Postfix-style: `mx1.example.org[192.0.2.1]:25`. */
export function where(hop: Pick<Hop, 'name' | 'address' | 'port'>): string {
  return `${hop.name}[${hop.address}]:${hop.port}`;
}

function failure(e: NodemailerError): RecipientFailure {
  return { address: e.recipient ?? '', code: e.responseCode ?? 450, response: oneLine(e.response ?? e.message) };
}

function toError(err: Error, connecting: boolean, where: string, recipients: RecipientFailure[] = []): TransactionError {
  const e = err as NodemailerError;
  // nodemailer refuses a message over the server's SIZE before sending it: a permanent failure (RFC 1870)
  if (e.code === 'EMESSAGE' && /size larger than allowed/i.test(e.message)) {
    return new TransactionError(`552 5.3.4 ${where}: ${oneLine(e.message)}`, 552, false, recipients);
  }
  // The host is not named here: the relay puts `host[address]:port: ` before what it logs and keeps.
  const text = e.response ? oneLine(e.response) : oneLine(e.message);
  return new TransactionError(text, e.responseCode || undefined, connecting || e.code === 'ETLS' || e.code === 'EAUTH', recipients);
}
