import { abortSessionTaps, errorMessage, type GatewayHooks, type HeloInfo } from '../hooks.js';
import type { Logger } from '../log.js';
import { Recipient, Transaction, type Session, type SessionData, type TlsInfo, type TransactionOutcome } from '../session.js';
import type { BodySink, Spool } from '../spool/spool.js';
import { isVerdict, verdictToReply, type Stage, type Verdict } from '../verdict.js';
import { HeaderSizeCheck, MAX_HEADER_SECTION } from './header-size.js';
import { parseMailFrom, parseRcptTo, type Params } from './address.js';
import { recipientDsn, transactionDsn, type RecipientDsn } from './dsn.js';
import { parseCommandLine } from './command-line.js';
import { BareLineEndingScanner, DataDecoder, type BareLineEndingPolicy } from './data-decoder.js';
import { collectDeadChunks, GC_HINT_INTERVAL } from '../spool/gc-hint.js';
import { receivedHeaderValue } from './received-header.js';
import { formatReply, type Reply } from './reply.js';
import { decodeSaslPlain, decodeBase64Line } from './sasl.js';

/** The protocol options the engine needs, derived once per gateway from the config. */
export interface EngineOptions {
  hostname: string;
  banner: string;
  maxMessageSize: number;
  maxRecipients: number;
  /** Longest a whole DATA or BDAT body may take to arrive (slow-drip clients), in ms. */
  dataTimeout: number;
  /** Longest one command line may take to arrive, in ms (the idle timeout). */
  commandTimeout: number;
  maxErrors: number;
  maxUnrecognizedCommands: number;
  /** NOOP/RSET/VRFY/HELP a session may send before each further one counts as an error. */
  maxJunkCommands: number;
  maxCommandLineLength: number;
  bareLineEndings: BareLineEndingPolicy;
  authWithoutTls: boolean;
  requireTls: boolean;
  pipelining: boolean;
  chunking: boolean;
  smtputf8: boolean;
  /** Advertise DSN and take RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT (RFC 3461); off: they get 555. */
  dsn: boolean;
  vrfy: boolean;
}

/** What the engine needs from the gateway: hooks, spool and policy, no sockets. */
export interface EngineContext {
  readonly hooks: GatewayHooks;
  readonly options: EngineOptions;
  readonly spool: Spool;
  readonly log: Logger;
  /** Domains some plugin delivers locally; decides 550 5.1.1 vs 554 5.7.1 for unclaimed recipients. */
  isLocalDomain(domain: string): boolean;
  /** True when a TLS context is configured (STARTTLS can be offered). */
  readonly tlsAvailable: boolean;
  /** Called once per finished transaction (accepted or refused after DATA) for the log line. */
  transactionDone(session: SmtpSession, tx: Transaction, reply: Reply, ms: number): void;
  /**
   * A client-policy refusal before any data (connect, HELO, MAIL, RCPT): one log line
   * each, like Postfix's `NOQUEUE: reject:`. `reason` is the verdict's internal reason.
   */
  commandRefused?(session: SmtpSession, stage: Stage, reply: Reply, detail: RefusalDetail): void;
  /** Called once when a client's session is over (not for internal ones): for the log line. */
  sessionEnded?(session: SmtpSession, summary: SessionSummary): void;
}

/** How a session went, for its closing log line (Postfix's `disconnect from … ehlo=1 mail=1 rcpt=0/1 …`). */
export interface SessionSummary {
  /** `quit`, `timeout after RCPT`, `lost connection after DATA`, `too many errors after MAIL`, … */
  reason: string;
  /** Each command: `ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5` (ok/sent where some failed). */
  commands: string;
  ms: number;
}

/** Commands counted by name in a session summary; anything else is `unknown`. */
const SUMMARY_VERBS = new Set(['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN', 'HELP', 'STARTTLS', 'AUTH']);

/** What a refusal log line names besides the session: the sender, the recipient, the verdict's reason. */
export interface RefusalDetail {
  /** The refused HELO/EHLO name (the session's own is the earlier one, if any). */
  helo?: string;
  from?: string;
  recipient?: string;
  reason?: string;
}

/** The engine's only view of the connection: write bytes, close, switch to TLS, flow control. */
export interface EngineIO {
  write(data: string): void;
  /** Flush pending writes, then close. */
  close(): void;
  /**
   * Upgrade to TLS after the 220 reply has been flushed; resolves with the negotiated
   * parameters. Absent (or undefined: a connection without a TLS context) means no STARTTLS.
   */
  startTls?: (() => Promise<TlsInfo>) | undefined;
  /** Stop / restart reading from the peer (back-pressure while a hook or the spool is busy). */
  pause(): void;
  resume(): void;
  /** True while the peer does not read our replies (the write buffer is full). */
  isWriteBlocked?(): boolean;
  /** Resolves when the replies drained or the connection closed. */
  writeDrained?(): Promise<void>;
  /** Batch the replies of one pipelined group into one write. */
  cork?(): void;
  uncork?(): void;
}

export interface PeerInfo {
  id: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Set for implicit-TLS listeners: the session starts encrypted. */
  tls?: TlsInfo;
  /** A message the gateway made itself (`Gateway.submit()`), not a client: see `Session.internal`. */
  internal?: boolean;
}

type Phase = 'start' | 'command' | 'data' | 'bdat' | 'auth-plain' | 'auth-login-user' | 'auth-login-pass' | 'tls' | 'closed';

/** Stop buffering pipelined input beyond this while a command is being decided. */
const MAX_BACKLOG = 64 * 1024;
/** What DSN parameters add to the longest MAIL and RCPT line (RFC 3461 §4). */
const DSN_MAIL_EXTRA = 100;
const DSN_RCPT_EXTRA = 500;
/** The longest SASL response line taken (RFC 4954 §4: at least 12,288 octets). */
const SASL_RESPONSE_LIMIT = 12_288;
/** RCPTs past maxRecipients answered 452 without counting as errors (Postfix's smtpd_recipient_overshoot_limit). */
const RECIPIENT_OVERSHOOT_LIMIT = 1000;
/** The 354 text clients expect. */
const DATA_GO_AHEAD: Reply = { code: 354, text: 'End data with <CR><LF>.<CR><LF>' };
const LOCAL_ERROR: Reply = { code: 451, enhanced: '4.3.0', text: 'Local error in processing, try again later' };
const TOO_BIG: Reply = { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' };
const HTTP_VERBS = new Set(['GET', 'POST', 'HEAD', 'PUT', 'CONNECT', 'OPTIONS']);

/**
 * One SMTP session as a pure state machine: bytes in through `feed()`, replies out
 * through `io.write()`, decisions through the gateway's hooks. No sockets here, so
 * the whole protocol is tested on bytes.
 */
export class SmtpSession implements Session {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly internal: boolean;
  heloName: string | undefined;
  esmtp = false;
  tls: TlsInfo | undefined;
  user: string | undefined;
  transaction: Transaction | undefined;
  readonly data: SessionData = {};
  messageCount = 0;
  errorCount = 0;
  /** NOOP/RSET/VRFY/HELP so far (see junk()). */
  private junkCount = 0;
  // For the session's closing log line: commands by verb (ok / sent), the last one, why it ended.
  private readonly commandCounts = new Map<string, { ok: number; all: number }>();
  /** The command whose final reply is still to come (3xx replies are not final). */
  private pendingVerb: string | undefined;
  private lastVerb = 'CONNECT';
  private endReason: string | undefined;
  private readonly began = performance.now();
  readonly log: Logger;

  private phase: Phase = 'start';
  private input: Buffer | undefined;
  private running = false;
  private paused = false;
  private unrecognized = 0;
  private txSeq = 0;
  /** True while a long command line is being skipped up to its end. */
  private skippingLine = false;
  // DATA / BDAT state, allocated only while receiving a body.
  private decoder: DataDecoder | undefined;
  private scanner: BareLineEndingScanner | undefined;
  private sink: BodySink | undefined;
  private bodySize = 0;
  private bodyTooBig = false;
  private headerSize: HeaderSizeCheck | undefined;
  private bodyDeadline = 0;
  private nextCollect = 0;
  private bdatRemaining = 0;
  private bdatLast = false;
  /** 'bdat' once BDAT was used in this transaction: DATA is then out of sequence. */
  private bodyMode: 'none' | 'data' | 'bdat' = 'none';
  /** Set while the bytes of a refused BDAT chunk are read and thrown away (RFC 3030 §2). */
  private bdatRefusal: Reply | undefined;
  /**
   * A BDAT transaction went over the size limit and was ended with 552: the chunks
   * the client pipelined after it are still read (never as commands) and answered
   * 552, until a LAST chunk, MAIL, RSET, HELO/EHLO or STARTTLS.
   */
  private bdatDiscard = false;
  /** The client sent QUIT: a transaction still open then ends as 'quit', not 'disconnect'. */
  private quitting = false;
  private txStart = 0;
  /** The end of a received body being decided (endBody), awaited by ended(). */
  private finishing: Promise<void> | undefined;
  /** RCPT commands seen in the current transaction, refused ones included (DATA without any is out of sequence). */
  private rcptCommands = 0;
  private authUser: string | undefined;
  private shuttingDown = false;
  /** When the first byte of a still incomplete command line arrived (0: none pending). */
  private lineStarted = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly io: EngineIO,
    peer: PeerInfo,
  ) {
    this.id = peer.id;
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
    this.tls = peer.tls;
    this.internal = peer.internal === true;
    this.log = ctx.log;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Run the connect hook and send the greeting. */
  start(): Promise<void> {
    const greeting = this.greet().finally(() => {
      if (this.starting === greeting) this.starting = undefined;
    });
    this.starting = greeting;
    return greeting;
  }

  private async greet(): Promise<void> {
    this.io.pause();
    // An internal submission skips every client-policy hook (connect, helo, mail, rcpt,
    // data): the gateway made the message; only claim and queue decide where it goes.
    const verdict = this.internal ? undefined : await this.decide('connect', this.ctx.hooks.connect.promise(this));
    if (this.phase === 'closed') return;
    if (verdict && verdict.kind !== 'accept') {
      const reply = verdictToReply(verdict, 'connect');
      this.ctx.commandRefused?.(this, 'connect', verdict.kind === 'reject' ? reply : { ...reply, code: 421 }, { ...(verdict.reason ? { reason: verdict.reason } : {}) });
      this.endReason ??= 'refused at connect';
      if (verdict.kind === 'reject') {
        // RFC 5321 §3.1: a 554 greeting; the client should QUIT, we close after a short answer.
        this.reply(reply);
      } else this.reply({ ...reply, code: 421 });
      this.close();
      return;
    }
    const o = this.ctx.options;
    this.reply({ code: 220, text: `${o.hostname} ESMTP${o.banner ? ` ${o.banner}` : ''}` });
    this.phase = 'command';
    this.io.resume();
    if (this.input) this.pumping = this.pump();
  }

  /** The gateway is stopping: close now if idle, else once the current transaction is over. */
  shutdown(): void {
    if (this.phase === 'closed') return;
    this.shuttingDown = true;
    if (!this.running && !this.transaction && (this.phase === 'command' || this.phase === 'start')) this.closeForShutdown();
  }

  private closeForShutdown(): void {
    this.endReason ??= `shutdown after ${this.lastVerb}`;
    this.reply({ code: 421, enhanced: '4.3.2', text: `${this.ctx.options.hostname} Service shutting down, try again later` });
    this.close();
  }

  /** Bytes from the peer. */
  feed(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'tls') return;
    this.input = this.input && this.input.length > 0 ? Buffer.concat([this.input, chunk]) : chunk;
    if (this.phase === 'start') return;
    if (this.running) {
      if (this.input.length > MAX_BACKLOG && !this.paused) {
        this.paused = true;
        this.io.pause();
      }
      return;
    }
    this.pumping = this.pump();
  }

  /**
   * Resolves when all input fed so far has been processed (or is waiting for more bytes).
   * The connection waits on it after a half-close before closing; tests use it too.
   */
  async settled(): Promise<void> {
    while (this.pumping || this.starting) {
      await (this.starting ?? this.pumping);
      if (!this.running) this.pumping = undefined;
      this.starting = undefined;
    }
  }

  private pumping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  /** The idle timer fired (the listener owns the timer). */
  timeout(): void {
    if (this.phase === 'closed') return;
    this.endReason ??= `timeout after ${this.lastVerb}`;
    this.reply({ code: 421, enhanced: '4.4.2', text: `${this.ctx.options.hostname} Error: timeout exceeded` });
    this.close();
  }

  /** The connection is gone (peer closed, reset, or we closed). Drops any unfinished transaction. */
  async ended(): Promise<void> {
    this.phase = 'closed';
    this.input = undefined;
    // Taps deciding what to answer a client that is gone may stop now (their signal);
    // data and queue taps are not told (see TapContext), they finish the message.
    abortSessionTaps(this);
    // A message already handed to the data/queue hooks is finished first (their taps are
    // bounded by timeouts): its spool file must not vanish under a queue tap, and reset /
    // disconnect must not run while that tap still uses per-transaction state.
    if (this.finishing) await this.finishing.catch(() => undefined);
    // Likewise a connect hook or a command still being decided: `disconnect` must come
    // after them (a plugin that takes a slot at connect releases it at disconnect).
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.running && this.pumping) await this.pumping.catch(() => undefined);
    await this.abortBody();
    await this.endTransaction(this.quitting ? 'quit' : 'disconnect');
    await this.ctx.hooks.disconnect.promise(this);
    if (!this.internal && this.ctx.sessionEnded) {
      const reason = this.endReason ?? `lost connection after ${this.lastVerb}`;
      this.ctx.sessionEnded(this, { reason, commands: this.commandSummary(), ms: Math.round(performance.now() - this.began) });
    }
  }

  /** Process buffered input until it is used up or a command must wait. */
  private async pump(): Promise<void> {
    this.running = true;
    this.io.cork?.();
    try {
      while (this.input && this.input.length > 0) {
        const phase = this.phase;
        if (phase === 'data') {
          if (!(await this.pumpData())) break;
        } else if (phase === 'bdat') {
          if (!(await this.pumpBdat())) break;
        } else if (phase === 'command' || phase.startsWith('auth')) {
          const line = this.takeLine();
          if (line === undefined) break;
          await this.handleLine(line);
        } else break;
        if (this.phase === 'closed' || this.phase === 'tls') break;
        // A client that pipelines without reading: answer nothing more until it reads,
        // or its replies pile up in memory (reading its input is paused meanwhile).
        if (this.io.isWriteBlocked?.()) {
          this.io.uncork?.();
          await this.io.writeDrained!();
          this.io.cork?.();
          if (this.closed) break;
        }
        // (a QUIT the client already sent still gets its 221)
        if (this.shuttingDown && !this.transaction && this.phase === 'command' && !this.quitIsNext()) {
          this.closeForShutdown();
          break;
        }
      }
    } catch (error) {
      // A bug in the engine must not crash the process: answer 421 and drop the session.
      this.log.error('session failed', { session: this.id, error });
      if (this.phase !== 'closed') {
        this.reply({ code: 421, enhanced: '4.3.0', text: 'Internal error, closing connection' });
        this.close();
      }
    } finally {
      this.running = false;
      this.io.uncork?.();
      if (this.paused && this.phase !== 'closed') {
        this.paused = false;
        this.io.resume();
      }
    }
  }

  /** The next buffered line is a complete QUIT. */
  private quitIsNext(): boolean {
    const buf = this.input;
    if (!buf || buf.length < 5) return false;
    const lf = buf.indexOf(10);
    return lf >= 4 && /^QUIT\r?$/i.test(buf.toString('latin1', 0, lf));
  }

  /** Take one command line (without its line ending) out of the input, or undefined if incomplete. */
  private takeLine(): string | undefined {
    const buf = this.input!;
    // A SASL response is not a command line: RFC 4954 §4 has servers take 12,288 octets
    // (long passwords and tokens) of response text, its CRLF not counted, where a command
    // line is 512 octets with its CRLF.
    const max = this.phase.startsWith('auth') ? Math.max(SASL_RESPONSE_LIMIT + 2, this.ctx.options.maxCommandLineLength) : this.ctx.options.maxCommandLineLength;
    const lf = buf.indexOf(10);
    if (lf < 0) {
      // A line that trickles in byte by byte resets the idle timer with every byte
      // (slowloris): the whole line must arrive within the idle timeout, like Postfix's
      // per-record deadline.
      const now = Date.now();
      if (this.lineStarted === 0) this.lineStarted = now;
      else if (now - this.lineStarted > this.ctx.options.commandTimeout) {
        this.input = undefined;
        this.timeout();
        return undefined;
      }
      if (buf.length > max && buf.length > max + this.dsnLineExtra(buf)) {
        // Keep nothing of an over-long line; remember to skip its rest.
        this.input = undefined;
        if (!this.skippingLine) {
          this.skippingLine = true;
          this.lineTooLong();
        }
      }
      return undefined;
    }
    this.input = lf + 1 < buf.length ? buf.subarray(lf + 1) : undefined;
    this.lineStarted = 0;
    if (this.skippingLine) {
      this.skippingLine = false;
      return undefined === this.input ? undefined : this.takeLine();
    }
    const end = lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf;
    if (end > max - 2 && end > max - 2 + this.dsnLineExtra(buf)) {
      this.lineTooLong();
      return this.input ? this.takeLine() : undefined;
    }
    return buf.toString('utf8', 0, end);
  }

  /**
   * 500 for an over-long line. In an AUTH exchange the exchange ends with it: the next
   * line is a command again, never taken as the SASL response (a MAIL eaten as a password).
   */
  private lineTooLong(): void {
    if (this.phase.startsWith('auth')) {
      this.phase = 'command';
      this.authUser = undefined;
    }
    this.error({ code: 500, enhanced: '5.5.6', text: 'Line too long' });
  }

  /**
   * RFC 3461 §4: with DSN, a MAIL line may be 100 characters longer (ENVID, RET) and a
   * RCPT line 500 (NOTIFY, ORCPT); other lines keep the plain limit.
   */
  private dsnLineExtra(line: Buffer): number {
    if (!this.ctx.options.dsn || this.phase !== 'command') return 0;
    const verb = line.toString('latin1', 0, 5).toUpperCase();
    return verb === 'RCPT ' ? DSN_RCPT_EXTRA : verb === 'MAIL ' ? DSN_MAIL_EXTRA : 0;
  }

  private async handleLine(line: string): Promise<void> {
    switch (this.phase) {
      case 'auth-plain':
        return this.authPlainResponse(line);
      case 'auth-login-user':
        return this.authLoginUser(line);
      case 'auth-login-pass':
        return this.authLoginPass(line);
      default:
        return this.command(line);
    }
  }

  private async command(line: string): Promise<void> {
    // A BDAT message left open (NOOP, NOOP, …) must not hold its spool file forever;
    // nor may the chunks of one that went over the size limit go on forever.
    if ((this.bodyMode === 'bdat' || this.bdatDiscard) && this.bodyTimedOut()) return;
    const { verb, args } = parseCommandLine(line);
    // (only counted when someone reads the summary: this is on every command's path)
    if (this.ctx.sessionEnded) this.pendingVerb = this.lastVerb = SUMMARY_VERBS.has(verb) ? verb : 'UNKNOWN';
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        return this.helo(verb, args);
      case 'MAIL':
        return this.mail(args);
      case 'RCPT':
        return this.rcpt(args);
      case 'DATA':
        return this.dataCommand(args);
      case 'BDAT':
        return this.bdatCommand(args);
      case 'RSET':
        if (args) return this.error({ code: 501, enhanced: '5.5.4', text: 'Syntax: RSET' });
        this.bdatDiscard = false;
        await this.endTransaction('rset');
        this.reply({ code: 250, enhanced: '2.0.0', text: 'OK' });
        return this.junk();
      case 'NOOP':
        this.reply({ code: 250, enhanced: '2.0.0', text: 'OK' });
        return this.junk();
      case 'QUIT':
        this.quitting = true;
        this.endReason ??= 'quit';
        await this.ctx.hooks.quit.promise(this);
        this.reply({ code: 221, enhanced: '2.0.0', text: `${this.ctx.options.hostname} closing connection` });
        return this.close();
      case 'VRFY':
        if (!this.ctx.options.vrfy) return this.error({ code: 502, enhanced: '5.5.1', text: 'VRFY command is disabled' });
        if (!args) return this.error({ code: 501, enhanced: '5.5.4', text: 'Syntax: VRFY address' });
        this.reply({ code: 252, enhanced: '2.5.0', text: 'Cannot VRFY user, but will accept message and attempt delivery' });
        return this.junk();
      case 'EXPN':
        return this.error({ code: 502, enhanced: '5.5.1', text: 'EXPN command is disabled' });
      case 'HELP':
        this.reply({
          code: 214,
          enhanced: '2.0.0',
          text: ['Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH', 'See RFC 5321'],
        });
        return this.junk();
      case 'STARTTLS':
        return this.startTls(args);
      case 'AUTH':
        return this.auth(args);
      default:
        return this.unknownCommand(verb);
    }
  }

  /**
   * NOOP, RSET, VRFY and HELP move no mail: a client sending one every little while would
   * hold its connection slot for ever (each resets the idle timer). Past
   * `maxJunkCommands` each one counts as an error, as Postfix's smtpd_junk_command_limit.
   */
  private junk(): void {
    if (++this.junkCount > this.ctx.options.maxJunkCommands) this.countError();
  }

  private unknownCommand(verb: string): void {
    if (HTTP_VERBS.has(verb) || verb.endsWith(':')) {
      // An HTTP client or a header line sent as a command: this is not an SMTP client.
      this.endReason ??= 'not an SMTP client';
      this.reply({ code: 421, enhanced: '4.7.0', text: 'Not an SMTP client, closing connection' });
      return this.close();
    }
    this.unrecognized++;
    if (this.unrecognized > this.ctx.options.maxUnrecognizedCommands) {
      this.endReason ??= 'too many unrecognized commands';
      this.reply({ code: 421, enhanced: '4.7.0', text: 'Too many unrecognized commands, closing connection' });
      return this.close();
    }
    this.error({ code: 500, enhanced: '5.5.2', text: 'Command not recognized' });
  }

  // --- HELO / EHLO -------------------------------------------------------------------------

  private async helo(verb: 'HELO' | 'EHLO', args: string): Promise<void> {
    const name = args.trim();
    if (!name || /\s/.test(name)) return this.error({ code: 501, enhanced: '5.5.4', text: `Syntax: ${verb} hostname` });
    // Real clients send odd names (underscores, bare words, literals) and are accepted;
    // control characters and bidi overrides are never a name, and would be echoed back,
    // passed to plugins and logged.
    if (name.length > 255 || /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u.test(name)) {
      return this.error({ code: 501, enhanced: '5.5.2', text: `Invalid ${verb} name` });
    }
    this.bdatDiscard = false;
    await this.endTransaction('helo');
    const info: HeloInfo = { verb, name, extensions: verb === 'EHLO' ? this.extensions() : [] };
    const verdict = this.internal ? undefined : await this.decide('helo', this.ctx.hooks.helo.promise(this, info));
    if (verdict && verdict.kind !== 'accept') return this.refuse(verdict, 'helo', { helo: name });
    this.heloName = name;
    this.esmtp = verb === 'EHLO';
    const greeting = `${this.ctx.options.hostname} Hello ${name} [${this.remoteAddress}]`;
    if (verb === 'HELO') return this.reply({ code: 250, text: greeting });
    this.reply({ code: 250, text: [greeting, ...info.extensions] });
  }

  private extensions(): string[] {
    const o = this.ctx.options;
    const ext: string[] = [];
    if (o.pipelining) ext.push('PIPELINING');
    ext.push(`SIZE ${o.maxMessageSize}`, '8BITMIME', 'ENHANCEDSTATUSCODES');
    if (o.dsn) ext.push('DSN');
    if (o.smtputf8) ext.push('SMTPUTF8');
    if (o.chunking) ext.push('CHUNKING');
    if (this.ctx.tlsAvailable && !this.tls) ext.push('STARTTLS');
    if (this.authOffered()) ext.push('AUTH PLAIN LOGIN');
    return ext;
  }

  private authOffered(): boolean {
    return this.authTapped() && (this.tls !== undefined || this.ctx.options.authWithoutTls);
  }

  /**
   * Some plugin checks credentials. Not `hooks.auth.isUsed()`: tapable counts
   * interceptors too, and the gateway intercepts every hook, so that is always true.
   */
  private authTapped(): boolean {
    return this.ctx.hooks.auth.taps.length > 0;
  }

  // --- MAIL / RCPT -------------------------------------------------------------------------

  private async mail(args: string): Promise<void> {
    this.bdatDiscard = false;
    if (!this.heloName) return this.error({ code: 503, enhanced: '5.5.1', text: 'Send HELO/EHLO first' });
    if (this.transaction) return this.error({ code: 503, enhanced: '5.5.1', text: 'Nested MAIL command' });
    if (this.ctx.options.requireTls && !this.tls && !this.internal) return this.error({ code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' });
    const parsed = parseMailFrom(args, { smtputf8: this.ctx.options.smtputf8 && this.esmtp });
    if ('error' in parsed) return this.error(parsed.error);
    const paramError = this.checkMailParams(parsed.params);
    if (paramError) return this.error(paramError);
    const dsn = transactionDsn(parsed.params);
    if ('error' in dsn) return this.error(dsn.error);
    const tx = new Transaction(`${this.id}.${++this.txSeq}`, parsed.address, parsed.params, dsn.dsn);
    this.transaction = tx;
    this.rcptCommands = 0;
    this.txStart = performance.now();
    const verdict = this.internal ? undefined : await this.decide('mail', this.ctx.hooks.mail.promise(this, tx));
    if (this.transaction !== tx) return;
    if (verdict && verdict.kind !== 'accept') {
      this.transaction = undefined;
      tx.outcome = Object.freeze({ end: 'refused', queued: false });
      await this.ctx.hooks.reset.promise(this, tx);
      return this.refuse(verdict, 'mail', { from: tx.senderText });
    }
    this.reply({ code: 250, enhanced: '2.1.0', text: 'Sender OK' });
  }

  private checkMailParams(params: Params): Reply | undefined {
    const o = this.ctx.options;
    for (const [key, value] of params) {
      switch (key) {
        case 'SIZE': {
          if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) return { code: 501, enhanced: '5.5.4', text: 'Bad SIZE parameter' };
          if (Number(value) > o.maxMessageSize) return TOO_BIG;
          break;
        }
        case 'BODY': {
          const body = typeof value === 'string' ? value.toUpperCase() : '';
          if (body !== '7BIT' && body !== '8BITMIME') return { code: 501, enhanced: '5.5.4', text: 'Bad BODY parameter' };
          break;
        }
        case 'SMTPUTF8':
          if (!o.smtputf8 || value !== true) return { code: 555, enhanced: '5.5.4', text: 'Unsupported SMTPUTF8 parameter' };
          break;
        case 'AUTH':
          // RFC 4954 §5: accepted and ignored unless we trust the submitter; we never relay it on.
          break;
        case 'RET':
        case 'ENVID':
          // values are checked once, where they are decoded (transactionDsn, in mail())
          if (!o.dsn) return { code: 555, enhanced: '5.5.4', text: `Unsupported MAIL parameter ${key}` };
          break;
        default:
          return { code: 555, enhanced: '5.5.4', text: `Unsupported MAIL parameter ${key}` };
      }
    }
    return undefined;
  }

  /** RCPT takes NOTIFY and ORCPT (RFC 3461) when DSN is on (decoded once); anything else is 555. */
  private rcptDsn(params: Params): { dsn: RecipientDsn | undefined } | { error: Reply } {
    const unsupported = [...params.keys()].filter((key) => !this.ctx.options.dsn || (key !== 'NOTIFY' && key !== 'ORCPT'));
    if (unsupported.length > 0) return { error: { code: 555, enhanced: '5.5.4', text: `Unsupported RCPT parameter ${unsupported.join(' ')}` } };
    return recipientDsn(params);
  }

  private async rcpt(args: string): Promise<void> {
    const tx = this.transaction;
    if (!tx) return this.error({ code: 503, enhanced: '5.5.1', text: 'Need MAIL before RCPT' });
    this.rcptCommands++;
    const parsed = parseRcptTo(args, { smtputf8: tx.smtputf8 });
    if ('error' in parsed) return this.error(parsed.error);
    const dsn = parsed.params.size > 0 ? this.rcptDsn(parsed.params) : undefined;
    if (dsn && 'error' in dsn) return this.error(dsn.error);
    if (tx.recipients.length >= this.ctx.options.maxRecipients) {
      // RFC 5321 §4.5.3.1.10: the client sends the rest in another transaction. Not an
      // error while it is a plausible overshoot: a pipelining client sends all its RCPTs
      // before reading any reply, and would otherwise hit maxErrors and lose the message
      // on every retry (Postfix: smtpd_recipient_overshoot_limit, 1000).
      const tooMany: Reply = { code: 452, enhanced: '4.5.3', text: 'Too many recipients' };
      if (this.rcptCommands - this.ctx.options.maxRecipients <= RECIPIENT_OVERSHOOT_LIMIT) return this.reply(tooMany);
      return this.error(tooMany);
    }
    const rcpt = new Recipient(parsed.address, parsed.params, parsed.postmaster, dsn?.dsn);
    const local = (parsed.postmaster && parsed.address.domain === '') || this.ctx.isLocalDomain(parsed.address.domain);
    // The gateway's own mail (a bounce) may go anywhere: a relay plugin claims it like a trusted client's.
    if (this.internal && !local) rcpt.data.relayAllowed = true;
    const policy = this.internal ? undefined : await this.decide('rcpt', this.ctx.hooks.rcpt.promise(this, tx, rcpt));
    if (this.transaction !== tx) return;
    if (policy && policy.kind !== 'accept') return this.refuse(policy, 'rcpt', { recipient: rcpt.text });
    const claim = await this.decide('claim', this.ctx.hooks.claim.promise(this, tx, rcpt));
    if (this.transaction !== tx) return;
    if (claim && claim.kind !== 'accept') return this.refuse(claim, 'rcpt', { recipient: rcpt.text });
    if (!rcpt.claimedBy && !policy) {
      // Nobody said yes: the core's default policy (DESIGN "Who delivers which recipient").
      // `<postmaster>` (no domain) is ours; postmaster@elsewhere is a relay attempt like any other.
      const refusal: Reply = local
        ? { code: 550, enhanced: '5.1.1', text: `<${rcpt.text}>: Recipient address rejected: User unknown` }
        : { code: 554, enhanced: '5.7.1', text: `<${rcpt.text}>: Relay access denied` };
      this.ctx.commandRefused?.(this, 'rcpt', refusal, { recipient: rcpt.text, reason: local ? 'no plugin claimed it' : 'not relayable' });
      return this.error(refusal);
    }
    tx.recipients.push(rcpt);
    const accepted = policy ?? claim;
    this.reply(accepted?.message ? verdictToReply(accepted, 'rcpt') : { code: 250, enhanced: '2.1.5', text: 'Recipient OK' });
  }

  // --- DATA / BDAT -------------------------------------------------------------------------

  private async dataCommand(args: string): Promise<void> {
    const tx = this.transaction;
    if (args) return this.error({ code: 501, enhanced: '5.5.4', text: 'Syntax: DATA' });
    if (!tx) return this.error({ code: 503, enhanced: '5.5.1', text: 'Need MAIL command' });
    if (this.bodyMode === 'bdat') return this.error({ code: 503, enhanced: '5.5.1', text: 'DATA not allowed after BDAT' });
    if (this.rcptCommands === 0) return this.error({ code: 503, enhanced: '5.5.1', text: 'Need RCPT command' });
    if (tx.recipients.length === 0) return this.error({ code: 554, enhanced: '5.5.1', text: 'No valid recipients' });
    if (!(await this.spoolReady())) return this.error(LOCAL_ERROR);
    this.bodyMode = 'data';
    this.openBody();
    this.decoder = new DataDecoder(this.ctx.options.bareLineEndings);
    this.phase = 'data';
    this.reply(DATA_GO_AHEAD);
  }

  /** Feed input to the DATA decoder; returns false when input is used up (wait for more). */
  private async pumpData(): Promise<boolean> {
    if (this.bodyTimedOut()) return false;
    const decoder = this.decoder!;
    const input = this.input!;
    const result = decoder.write(input);
    this.input = result.consumed < input.length ? input.subarray(result.consumed) : undefined;
    for (const chunk of result.body) await this.writeBody(chunk);
    if (!result.done) return this.input !== undefined;
    this.phase = 'command';
    const violation = decoder.violation;
    this.decoder = undefined;
    await this.finishBody(violation);
    return true;
  }

  private async bdatCommand(args: string): Promise<void> {
    const match = /^(\d{1,15})(?: +(LAST))? *$/i.exec(args);
    if (!match) {
      // Without a valid size we cannot know where the chunk ends; its bytes would be read as commands.
      this.reply({ code: 501, enhanced: '5.5.4', text: 'Syntax: BDAT size [LAST], closing connection' });
      return this.close();
    }
    const size = Number(match[1]);
    const last = match[2] !== undefined;
    const tx = this.transaction;
    if (!this.ctx.options.chunking) this.bdatRefusal = { code: 502, enhanced: '5.5.1', text: 'BDAT not supported' };
    else if (this.bdatDiscard) this.bdatRefusal = TOO_BIG;
    else if (!tx) this.bdatRefusal = { code: 503, enhanced: '5.5.1', text: 'Need MAIL command' };
    else if (this.bodyMode === 'data') this.bdatRefusal = { code: 503, enhanced: '5.5.1', text: 'BDAT not allowed after DATA' };
    else if (this.rcptCommands === 0) this.bdatRefusal = { code: 503, enhanced: '5.5.1', text: 'Need RCPT command' };
    else if (tx.recipients.length === 0) this.bdatRefusal = { code: 554, enhanced: '5.5.1', text: 'No valid recipients' };
    else if (this.bodyMode !== 'bdat' && !(await this.spoolReady())) this.bdatRefusal = LOCAL_ERROR;
    else if (this.bodyMode !== 'bdat') {
      this.bodyMode = 'bdat';
      this.openBody();
      this.scanner = new BareLineEndingScanner(this.ctx.options.bareLineEndings);
    }
    if (!this.bdatRefusal && !this.bodyTooBig && this.bodySize + size > this.ctx.options.maxMessageSize) {
      // This chunk takes the message over the limit: nothing more is stored, the chunk is
      // read to its end and answered 552 (Postfix does the same), not the next 250.
      this.bodyTooBig = true;
      await this.abortBody();
    }
    // A refused chunk is still read to its end, but not for longer than a body may take
    // (the chunks after an over-limit one: than the rest of that message's time).
    if (this.bdatRefusal && !this.bdatDiscard) this.bodyDeadline = Date.now() + this.ctx.options.dataTimeout;
    this.bdatRemaining = size;
    this.bdatLast = last;
    this.phase = 'bdat';
    if (size === 0) return this.finishBdatChunk();
  }

  private async pumpBdat(): Promise<boolean> {
    if (this.bodyTimedOut()) return false;
    const input = this.input!;
    const take = Math.min(this.bdatRemaining, input.length);
    const chunk = input.subarray(0, take);
    this.input = take < input.length ? input.subarray(take) : undefined;
    this.bdatRemaining -= take;
    if (!this.bdatRefusal && !this.bodyTooBig) {
      for (const part of this.scanner!.scan(chunk)) await this.writeBody(part);
    }
    if (this.bdatRemaining > 0) return false;
    await this.finishBdatChunk();
    return true;
  }

  private async finishBdatChunk(): Promise<void> {
    this.phase = 'command';
    const refusal = this.bdatRefusal;
    if (refusal) {
      this.bdatRefusal = undefined;
      if (this.bdatDiscard) {
        // Part of the transaction already refused with 552: the same answer, not another error.
        if (this.bdatLast) this.bdatDiscard = false;
        return this.reply(refusal);
      }
      return this.error(refusal);
    }
    if (this.bodyTooBig) {
      // 552 now ends the transaction; chunks the client pipelined after this one are discarded.
      this.scanner = undefined;
      await this.finishBody(null);
      if (!this.bdatLast && !this.closed) this.bdatDiscard = true;
      return;
    }
    if (!this.bdatLast) {
      return this.reply({ code: 250, enhanced: '2.0.0', text: `${this.bodySize} octets received` });
    }
    // A CR at the very end of the last chunk is resolved only now: a bare CR (normalize appends its LF).
    const scanner = this.scanner!;
    for (const part of scanner.finish()) await this.writeBody(part);
    const violation = scanner.violation;
    this.scanner = undefined;
    await this.finishBody(violation);
  }

  /** Create the spool directory if needed; a failure is a 451 for this message, not a crash of the session. */
  private async spoolReady(): Promise<boolean> {
    try {
      await this.ctx.spool.init();
      return true;
    } catch (error) {
      this.log.error('spool unavailable', { session: this.id, error });
      return false;
    }
  }

  private openBody(): void {
    this.sink = this.ctx.spool.open();
    this.bodySize = 0;
    this.bodyTooBig = false;
    this.headerSize = new HeaderSizeCheck();
    this.bodyDeadline = Date.now() + this.ctx.options.dataTimeout;
    this.nextCollect = GC_HINT_INTERVAL;
  }

  /** A body that trickles in for longer than `dataTimeout` (each byte resetting the idle timer) is cut off. */
  private bodyTimedOut(): boolean {
    if (Date.now() <= this.bodyDeadline) return false;
    this.reply({ code: 421, enhanced: '4.4.2', text: `${this.ctx.options.hostname} Error: timeout exceeded while receiving data` });
    this.close();
    return true;
  }

  private async writeBody(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.bodySize += chunk.length;
    // SIZE is enforced while bytes arrive: past the limit we stop storing and only count.
    if (this.bodyTooBig || this.bodySize > this.ctx.options.maxMessageSize) {
      if (!this.bodyTooBig) {
        this.bodyTooBig = true;
        await this.abortBody();
      }
      // Discarded chunks die young too; see gc-hint.ts.
      if (this.bodySize >= this.nextCollect) {
        this.nextCollect = this.bodySize + GC_HINT_INTERVAL;
        collectDeadChunks();
      }
      return;
    }
    this.headerSize?.push(chunk);
    const sink = this.sink;
    if (sink && !sink.write(chunk)) {
      this.io.pause();
      await sink.drained();
      this.io.resume();
    }
  }

  private async abortBody(): Promise<void> {
    const sink = this.sink;
    this.sink = undefined;
    if (sink) await sink.abort();
  }

  private finishBody(violation: 'bare-lf' | 'bare-cr' | null): Promise<void> {
    const done = this.endBody(violation).finally(() => {
      if (this.finishing === done) this.finishing = undefined;
    });
    this.finishing = done;
    return done;
  }

  /** End of DATA or BDAT LAST: check, run `data` and `queue`, answer exactly once. */
  private async endBody(violation: 'bare-lf' | 'bare-cr' | null): Promise<void> {
    const tx = this.transaction!;
    this.bodyMode = 'none';
    let reply: Reply;
    let disconnect = false;
    if (this.bodyTooBig) {
      reply = TOO_BIG;
    } else if (this.headerSize?.tooBig) {
      await this.abortBody();
      reply = { code: 552, enhanced: '5.6.0', text: `Message header section too large (it and the empty line after it must fit in ${MAX_HEADER_SECTION} bytes)` };
    } else if (violation) {
      await this.abortBody();
      reply = {
        code: 550,
        enhanced: '5.6.11',
        text: `Message refused: bare ${violation === 'bare-lf' ? '<LF>' : '<CR>'} in message; lines must end with <CR><LF> (RFC 5321 2.3.8)`,
      };
    } else {
      const verdict = await this.acceptBody(tx);
      reply = 'kind' in verdict ? verdictToReply(verdict, verdict.stage) : verdict;
      disconnect = 'kind' in verdict && verdict.kind === 'disconnect';
    }
    if (reply.code >= 400 && !this.internal) this.errorCount++;
    this.reply(reply);
    this.ctx.transactionDone(this, tx, reply, performance.now() - this.txStart);
    if (reply.code < 300) {
      this.messageCount++;
      // A client that moves mail is not idling: like Postfix, junk commands count again from
      // zero (a pooled connection sends RSET before every message).
      this.junkCount = 0;
    }
    await this.endTransaction('message', reply);
    if (disconnect) {
      this.endReason ??= `disconnected by policy after ${this.lastVerb}`;
      this.close();
    }
    else if (this.errorCount >= this.ctx.options.maxErrors) this.tooManyErrors();
  }

  /** Finish the spool, run `data` then `queue`; a verdict (with its stage) or the 250 reply. */
  private async acceptBody(tx: Transaction): Promise<Reply | (Verdict & { stage: Stage })> {
    const sink = this.sink!;
    this.sink = undefined;
    try {
      tx.message = await sink.finish();
    } catch (error) {
      this.log.error('spool write failed', { session: this.id, tx: tx.id, error });
      return LOCAL_ERROR;
    }
    tx.message.prependRawHeader(
      'Received',
      receivedHeaderValue({
        heloName: this.heloName,
        remoteAddress: this.remoteAddress,
        hostname: this.ctx.options.hostname,
        esmtp: this.esmtp,
        tls: this.tls !== undefined,
        authenticated: this.user !== undefined,
        smtputf8: tx.smtputf8,
        id: tx.id,
        recipients: tx.recipients.map((r) => r.text),
        date: new Date(),
        internal: this.internal,
      }),
    );
    const verdict = this.internal ? undefined : await this.decide('data', this.ctx.hooks.data.promise(this, tx));
    if (verdict && verdict.kind !== 'accept') return { ...verdict, stage: 'data' };
    const failure = await this.decide('queue', this.ctx.hooks.queue.promise(this, tx));
    if (failure) return { ...failure, stage: 'queue' };
    return { code: 250, enhanced: '2.0.0', text: `OK: queued as ${tx.id}` };
  }

  /**
   * Drop the current transaction, its spool file and per-transaction plugin state.
   * `reply` is the final reply to its body, for `end: 'message'`.
   */
  private async endTransaction(end: TransactionOutcome['end'], reply?: Reply): Promise<void> {
    const tx = this.transaction;
    this.bodyMode = 'none';
    if (!tx) return;
    this.transaction = undefined;
    // 250 is sent only after every queue tap succeeded (acceptBody): only then is it queued.
    tx.outcome = Object.freeze(reply ? { end, reply: Object.freeze({ ...reply }), queued: reply.code < 300 } : { end, queued: false });
    await this.abortBody();
    await this.ctx.hooks.reset.promise(this, tx);
    await this.ctx.spool.release(tx.message);
  }

  // --- STARTTLS / AUTH ---------------------------------------------------------------------

  private async startTls(args: string): Promise<void> {
    if (!this.ctx.tlsAvailable || !this.io.startTls) return this.error({ code: 502, enhanced: '5.5.1', text: 'STARTTLS not available' });
    if (args) return this.error({ code: 501, enhanced: '5.5.4', text: 'Syntax: STARTTLS' });
    if (this.tls) return this.error({ code: 503, enhanced: '5.5.1', text: 'TLS already active' });
    this.reply({ code: 220, enhanced: '2.0.0', text: 'Ready to start TLS' });
    // CVE-2011-0411: anything pipelined after STARTTLS arrived in plaintext; it must not be executed.
    this.input = undefined;
    this.phase = 'tls';
    this.io.uncork?.();
    try {
      const tls = await this.io.startTls();
      if (this.phase !== 'tls') return;
      // RFC 3207 §4.2: forget everything learned before TLS. Back to 'command' before the
      // reset hook runs: what the client sends over TLS meanwhile is queued, not dropped.
      this.tls = tls;
      this.heloName = undefined;
      this.esmtp = false;
      this.user = undefined;
      this.phase = 'command';
      this.bdatDiscard = false;
      await this.endTransaction('starttls');
    } catch (error) {
      // (Postfix logs the same at info: clients that cannot do our TLS are worth knowing about)
      this.log.info('TLS handshake failed', { session: this.id, client: this.remoteAddress, error: errorMessage(error) });
      this.endReason ??= 'TLS handshake failed';
      this.close();
    }
  }

  private async auth(args: string): Promise<void> {
    if (!this.heloName || !this.esmtp) return this.error({ code: 503, enhanced: '5.5.1', text: 'Send EHLO first' });
    if (this.user) return this.error({ code: 503, enhanced: '5.5.1', text: 'Already authenticated' });
    if (this.transaction) return this.error({ code: 503, enhanced: '5.5.1', text: 'AUTH not allowed during a mail transaction' });
    if (!this.authTapped()) return this.error({ code: 502, enhanced: '5.5.1', text: 'AUTH not available' });
    if (!this.tls && !this.ctx.options.authWithoutTls) {
      return this.error({ code: 538, enhanced: '5.7.11', text: 'Encryption required for requested authentication mechanism' });
    }
    const [mechanism = '', initial, extra] = args.split(' ');
    if (extra !== undefined) return this.error({ code: 501, enhanced: '5.5.4', text: 'Syntax: AUTH mechanism [initial-response]' });
    switch (mechanism.toUpperCase()) {
      case 'PLAIN':
        if (initial === undefined) {
          this.phase = 'auth-plain';
          return this.reply({ code: 334, text: '' });
        }
        return this.authPlainResponse(initial);
      case 'LOGIN':
        if (initial === undefined) {
          this.phase = 'auth-login-user';
          return this.reply({ code: 334, text: 'VXNlcm5hbWU6' });
        }
        return this.authLoginUser(initial);
      default:
        return this.error({ code: 504, enhanced: '5.5.4', text: 'Unrecognized authentication mechanism' });
    }
  }

  private async authPlainResponse(line: string): Promise<void> {
    this.phase = 'command';
    if (line === '*') return this.error({ code: 501, enhanced: '5.0.0', text: 'Authentication cancelled' });
    const creds = decodeSaslPlain(line);
    if (!creds) return this.error({ code: 501, enhanced: '5.5.2', text: 'Invalid AUTH PLAIN response' });
    return this.checkCredentials('PLAIN', creds.username, creds.password, creds.authzid);
  }

  private async authLoginUser(line: string): Promise<void> {
    if (line === '*') {
      this.phase = 'command';
      return this.error({ code: 501, enhanced: '5.0.0', text: 'Authentication cancelled' });
    }
    const user = decodeBase64Line(line);
    if (user === undefined) {
      this.phase = 'command';
      return this.error({ code: 501, enhanced: '5.5.2', text: 'Invalid base64 in AUTH LOGIN response' });
    }
    this.authUser = user;
    this.phase = 'auth-login-pass';
    this.reply({ code: 334, text: 'UGFzc3dvcmQ6' });
  }

  private async authLoginPass(line: string): Promise<void> {
    this.phase = 'command';
    const user = this.authUser ?? '';
    this.authUser = undefined;
    if (line === '*') return this.error({ code: 501, enhanced: '5.0.0', text: 'Authentication cancelled' });
    const password = decodeBase64Line(line);
    if (password === undefined) return this.error({ code: 501, enhanced: '5.5.2', text: 'Invalid base64 in AUTH LOGIN response' });
    return this.checkCredentials('LOGIN', user, password, undefined);
  }

  private async checkCredentials(mechanism: 'PLAIN' | 'LOGIN', username: string, password: string, authzid: string | undefined): Promise<void> {
    const verdict = await this.decide('auth', this.ctx.hooks.auth.promise(this, { mechanism, username, password, authzid }));
    if (verdict?.kind === 'accept') {
      this.user = username;
      return this.reply(verdictToReply(verdict, 'auth'));
    }
    // No verdict: nobody vouched for these credentials.
    return this.refuse(verdict ?? { kind: 'reject' }, 'auth');
  }

  // --- replies -----------------------------------------------------------------------------

  /** Await a decision hook; a stray rejection from tapable becomes a tempfail (the interceptor already catches taps). */
  private async decide(stage: Stage | 'claim', pending: Promise<Verdict | undefined | void>): Promise<Verdict | undefined> {
    try {
      const value = await pending;
      return isVerdict(value) ? value : undefined;
    } catch (error) {
      this.log.error('hook failed', { session: this.id, hook: stage, error });
      return { kind: 'tempfail', reason: `hook ${stage} failed` };
    }
  }

  /** Send the reply for a negative verdict; `disconnect` also closes. */
  private refuse(verdict: Verdict, stage: Stage, detail: RefusalDetail = {}): void {
    const reply = verdictToReply(verdict, stage);
    // A failed AUTH is logged where credentials are checked (with the user name), not here.
    if (stage !== 'auth') this.ctx.commandRefused?.(this, stage, reply, verdict.reason ? { ...detail, reason: verdict.reason } : detail);
    if (verdict.kind === 'disconnect') {
      // Its 421 is the last word: not a second "too many errors" 421 when it also reaches maxErrors.
      this.errorCount++;
      this.endReason ??= `disconnected by policy after ${this.lastVerb}`;
      this.reply(reply);
      return this.close();
    }
    this.error(reply);
  }

  private reply(reply: Reply): void {
    if (this.phase === 'closed') return;
    if (this.pendingVerb !== undefined && (reply.code < 300 || reply.code >= 400)) {
      const counts = this.commandCounts.get(this.pendingVerb) ?? { ok: 0, all: 0 };
      counts.all++;
      if (reply.code < 400) counts.ok++;
      this.commandCounts.set(this.pendingVerb, counts);
      this.pendingVerb = undefined;
    }
    this.io.write(formatReply(reply));
  }

  /** The session summary's command counts, in the order the commands were first used. */
  private commandSummary(): string {
    let ok = 0;
    let all = 0;
    const parts: string[] = [];
    for (const [verb, c] of this.commandCounts) {
      ok += c.ok;
      all += c.all;
      parts.push(`${verb.toLowerCase()}=${c.ok === c.all ? c.ok : `${c.ok}/${c.all}`}`);
    }
    parts.push(`commands=${ok === all ? ok : `${ok}/${all}`}`);
    return parts.join(' ');
  }

  /** An error reply counts toward the session's error limit (421 and close past it). */
  private error(reply: Reply): void {
    this.reply(reply);
    this.countError();
  }

  /** One more error: 421 and close at maxErrors (not in the middle of a body). */
  private countError(): void {
    // The gateway's own submission (a bounce to several recipients) is not a misbehaving client.
    if (this.internal) return;
    this.errorCount++;
    if (this.errorCount >= this.ctx.options.maxErrors && this.phase !== 'closed' && this.phase !== 'data' && this.phase !== 'bdat') {
      this.tooManyErrors();
    }
  }

  private tooManyErrors(): void {
    this.endReason ??= `too many errors after ${this.lastVerb}`;
    this.reply({ code: 421, enhanced: '4.7.0', text: 'Too many errors, closing connection' });
    this.close();
  }

  private close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.input = undefined;
    this.io.close();
  }
}
