import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import { createSecureContext, type SecureContext } from 'node:tls';
import { domainToASCII } from 'node:url';
import { ConfigError, resolveConfig, validateWith, type ConfigSource } from './config/load.js';
import { formatPath, type ConfigIssue } from './config/issues.js';
import type { GatewayConfig, GatewayConfigInput } from './config/schema.js';
import { DnsResolver } from './dns/index.js';
import { createHooks, errorMessage, type GatewayHooks, type TapOutcome } from './hooks.js';
import { createLogger, stackOf, type Logger } from './log.js';
import { isPlugin, pluginEntryProblems, type PluginContext, type PluginDefinition, type PluginGatewayView } from './plugin.js';
import { ConnectionTable, Listener, nextSessionId } from './server/listener.js';
import { Transaction, type Recipient } from './session.js';
import type { EngineContext, EngineIO, EngineOptions, PeerInfo, RefusalDetail, SessionSummary } from './smtp/engine.js';
import { SmtpSession } from './smtp/engine.js';
import { formatReply, type Reply } from './smtp/reply.js';
import { Spool } from './spool/spool.js';
import { submitMessage, type SubmitOptions, type SubmitResult } from './submit.js';

export interface GatewayOptions {
  /** Logger to use instead of one built from `config.log`. */
  logger?: Logger;
  /** Where the config came from, so plugin option errors can name their line. */
  source?: ConfigSource;
  /** DNS resolver to share with plugins (tests pass one pointed at a test server). */
  dns?: DnsResolver;
}

export interface UseOptions {
  /** Instance name (default: the plugin's name; a second instance gets "#2"). */
  name?: string;
  timeout?: number;
}

/** Timing of one plugin's taps on one hook. */
export interface TapStats {
  calls: number;
  totalMs: number;
  maxMs: number;
  errors: number;
}

/**
 * A gateway: the hooks, the plugins tapped into them, and the listeners. Created
 * from a config object (YAML or code); plugins are added with `use()` before
 * `listen()`; after that the hooks are closed to new taps.
 */
export class Gateway implements PluginGatewayView {
  readonly config: GatewayConfig;
  readonly hooks: GatewayHooks;
  readonly log: Logger;
  readonly spool: Spool;
  readonly stats = new Map<string, TapStats>();
  private readonly localDomains = new Set<string>();
  private readonly listeners: Listener[] = [];
  private readonly table: ConnectionTable;
  private readonly closers: Array<() => void | Promise<void>> = [];
  private readonly starters: Array<{ plugin: string; fn: () => void | Promise<void> }> = [];
  private readonly pluginNames = new Set<string>();
  /** submit() calls in progress: shutdown lets them finish before the plugins close. */
  private readonly submissions = new Set<Promise<SubmitResult>>();
  /**
   * Set once the client sessions are gone, just before the plugins close: from then on
   * submit() answers 421. Not earlier: a session finishing during the drain still sends
   * its reports (a delivered DSN) through submit().
   */
  private submissionsClosed = false;
  private readonly engineOptions: EngineOptions;
  private readonly source: ConfigSource | undefined;
  private dnsResolver: DnsResolver | undefined;
  private started = false;
  private closed: Promise<void> | undefined;
  private secureContext: SecureContext | undefined;

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.config = config;
    this.source = options.source;
    this.log = options.logger ?? createLogger({ level: config.log.level, format: config.log.format });
    this.dnsResolver = options.dns;
    this.spool = new Spool({ dir: config.spool.dir, memoryThreshold: config.spool.memoryThreshold });
    this.table = new ConnectionTable(config.limits);
    this.hooks = createHooks({
      timeout: config.pluginTimeout,
      record: (outcome, args) => this.recordTap(outcome, args),
      assertOpen: (hook, plugin) => {
        if (this.started) throw new Error(`plugin "${plugin}" tapped hook "${hook}" after the gateway started listening; tap in setup()`);
      },
    });
    const { limits, smtp } = config;
    this.engineOptions = {
      hostname: config.hostname,
      banner: smtp.banner,
      maxMessageSize: limits.maxMessageSize,
      maxRecipients: limits.maxRecipients,
      dataTimeout: limits.dataTimeout,
      commandTimeout: limits.idleTimeout,
      maxErrors: limits.maxErrors,
      maxUnrecognizedCommands: limits.maxUnrecognizedCommands,
      maxJunkCommands: limits.maxJunkCommands,
      maxCommandLineLength: limits.maxCommandLineLength,
      bareLineEndings: smtp.bareLineEndings,
      authWithoutTls: smtp.authWithoutTls,
      requireTls: smtp.requireTls,
      pipelining: smtp.pipelining,
      chunking: smtp.chunking,
      smtputf8: smtp.smtputf8,
      dsn: smtp.dsn,
      vrfy: smtp.vrfy,
    };
  }

  get hostname(): string {
    return this.config.hostname;
  }

  /** The shared DNS resolver, created on first use from `dns:` (default: `/etc/resolv.conf`). */
  get dns(): DnsResolver {
    const { servers, timeout, retries } = this.config.dns;
    this.dnsResolver ??= new DnsResolver({ ...(servers ? { servers } : {}), timeout, retries });
    return this.dnsResolver;
  }

  addLocalDomain(domain: string): void {
    this.localDomains.add(foldDomain(domain));
  }

  isLocalDomain(domain: string): boolean {
    return this.localDomains.has(foldDomain(domain));
  }

  /** The local domains, folded (A-labels, lower case), in the order they were declared. */
  listLocalDomains(): string[] {
    return [...this.localDomains];
  }

  /**
   * Add a plugin: validate its options with its own schema, then run its setup.
   * `index` is its position in the YAML list, for error messages.
   */
  async use<S extends z.ZodType>(plugin: PluginDefinition<S>, options?: z.input<S>, useOptions: UseOptions & { index?: number } = {}): Promise<void> {
    if (this.started) throw new Error(`cannot add plugin "${plugin.name}" after the gateway started listening`);
    if (!isPlugin(plugin)) throw new TypeError('use(): not a plugin made with definePlugin()');
    const at = useOptions.index === undefined ? undefined : ['plugins', useOptions.index];
    const [problem] = pluginEntryProblems(plugin, options);
    if (problem) throw at ? this.configError([...at, problem.key], problem.message) : new TypeError(`use(): ${problem.message}`);
    const prefix = at ? [...at, 'with'] : [];
    const validated = plugin.options
      ? validateWith(plugin.options, options ?? {}, at ? this.source : undefined, prefix)
      : options;
    let name = useOptions.name ?? plugin.name;
    for (let n = 2; this.pluginNames.has(name); n++) name = `${useOptions.name ?? plugin.name}#${n}`;
    this.pluginNames.add(name);
    const timeout = useOptions.timeout;
    const log = this.log.child({ plugin: name });
    const context: PluginContext<unknown> = {
      name,
      options: validated,
      hooks: this.hooks,
      tap: (hook, fn, opts = {}) => {
        // (TypeScript checks the name; a JavaScript plugin gets this instead of "cannot read properties of undefined")
        if (!Object.hasOwn(this.hooks, hook)) throw new TypeError(`plugin "${name}": tap(): no hook named ${JSON.stringify(hook)} (hooks: ${Object.keys(this.hooks).join(', ')})`);
        const tap = { name, ...(timeout === undefined ? {} : { timeout }), ...opts };
        // Sync and async taps alike: the interceptor handles both, and times out only promises.
        (this.hooks[hook] as unknown as { tap(o: object, f: Function): void }).tap(tap, fn);
      },
      gateway: this,
      log,
      configDir: this.source?.dir ?? process.cwd(),
      onClose: (fn) => this.closers.push(fn),
      onListen: (fn) => this.starters.push({ plugin: name, fn }),
    };
    // A setup that never settles would hang `mailgate serve` and `check` forever.
    const limit = timeout ?? this.config.pluginTimeout;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => plugin.setup(context as never)),
        new Promise<never>((_, fail) => {
          timer = setTimeout(() => fail(new Error(`setup did not finish within ${limit} ms`)), limit);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Open every listener. Resolves with their addresses (port 0 gets a real port). */
  async listen(): Promise<AddressInfo[]> {
    if (this.started) throw new Error('the gateway is already listening');
    await this.spool.init();
    await this.loadTls();
    this.started = true;
    const addresses: AddressInfo[] = [];
    try {
      for (const options of this.config.listen) {
        const offerStartTls = options.tls === 'starttls' && this.secureContext !== undefined;
        const listener = new Listener(
          options,
          this.engineContext(offerStartTls),
          this.table,
          this.config.limits,
          options.tls === 'none' ? () => undefined : () => this.secureContext,
          this.log,
        );
        addresses.push(await listener.listen());
        this.listeners.push(listener);
        this.log.info('listening', { host: options.host, port: addresses.at(-1)!.port, tls: options.tls });
      }
    } catch (error) {
      await Promise.all(this.listeners.map((l) => l.stopAccepting()));
      throw error;
    }
    if (!this.config.hostname.includes('.') && !this.config.hostname.startsWith('[')) {
      // Postfix warns about the same: the name goes into the greeting, EHLO to next hops and Received:.
      this.log.warn('hostname is not a fully qualified domain name; set hostname: (receiving servers check the HELO name)', { hostname: this.config.hostname });
    }
    for (const { plugin, fn } of this.starters) {
      try {
        await fn();
      } catch (error) {
        this.log.error('plugin failed to start', { plugin, error });
      }
    }
    return addresses;
  }

  /**
   * Read the TLS key and certificate and check that they make a TLS context (a key
   * that does not match its certificate fails here). `listen()` does it; `mailgate
   * check` calls it too, so a missing or wrong file is reported before a port opens,
   * with the line of its key in the config.
   */
  async loadTls(): Promise<void> {
    if (!this.config.tls || this.secureContext) return;
    this.secureContext = await this.readTls(this.config.tls);
  }

  /**
   * Read the TLS key and certificate again (SIGHUP after a renewal, as `postfix reload`
   * does): new connections and STARTTLS handshakes use them, sessions already in TLS
   * keep theirs. On any error the current ones stay in use and the error is thrown.
   * Resolves false when the config has no `tls:`.
   */
  async reloadTls(): Promise<boolean> {
    if (!this.config.tls) return false;
    this.secureContext = await this.readTls(this.config.tls);
    return true;
  }

  private async readTls(tls: NonNullable<GatewayConfig['tls']>): Promise<SecureContext> {
    // Both files are read before either failure is reported: a missing key and a missing
    // certificate are two mistakes, reported at once.
    const [key, cert] = await Promise.allSettled([readFile(tls.key), readFile(tls.cert)]);
    const issues: ConfigIssue[] = [];
    if (key.status === 'rejected') issues.push(...this.configError(['tls', 'key'], `cannot read the TLS private key: ${errorMessage(key.reason)}`).issues);
    if (cert.status === 'rejected') issues.push(...this.configError(['tls', 'cert'], `cannot read the TLS certificate: ${errorMessage(cert.reason)}`).issues);
    if (key.status === 'rejected' || cert.status === 'rejected') throw new ConfigError(issues, this.source?.file);
    try {
      return createSecureContext({ key: key.value, cert: cert.value, minVersion: tls.minVersion });
    } catch (error) {
      throw this.configError(['tls'], `the TLS key and certificate are not usable together: ${errorMessage(error)}`);
    }
  }

  /** A config mistake found after validation, placed at its key in the YAML file when there is one. */
  private configError(path: (string | number)[], message: string): ConfigError {
    const position = this.source?.locate(path);
    return new ConfigError(
      [{ path, pathText: formatPath(path), message, ...(this.source?.file ? { file: this.source.file } : {}), ...(position ? { line: position.line, column: position.column } : {}) }],
      this.source?.file,
    );
  }

  get addresses(): AddressInfo[] {
    return this.listeners.map((l) => l.address).filter((a): a is AddressInfo => a !== undefined);
  }

  /** Number of open SMTP connections. */
  get connections(): number {
    return this.table.all.size;
  }

  /**
   * Graceful shutdown: stop accepting, let sessions finish their transaction until
   * `timeout` (default `shutdownTimeout`), then drop what is left and close plugins.
   */
  close(timeout = this.config.shutdownTimeout): Promise<void> {
    this.closed ??= this.shutdown(timeout);
    return this.closed;
  }

  private async shutdown(timeout: number): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.stopAccepting()));
    for (const connection of this.table.all) connection.session.shutdown();
    const deadline = Date.now() + timeout;
    while (this.table.all.size > 0 && Date.now() < deadline) await sleep(50);
    for (const connection of this.table.all) connection.destroy();
    while (this.table.all.size > 0) await sleep(10);
    // A submission may start another (a report about a bounce): wait until none is left.
    while (this.submissions.size > 0) await Promise.allSettled([...this.submissions]);
    this.submissionsClosed = true;
    for (const close of this.closers.reverse()) {
      try {
        await close();
      } catch (error) {
        this.log.error('plugin close failed', { error });
      }
    }
  }

  /**
   * Start a session on any byte transport, without sockets: how the engine is tested
   * on bytes (see `@mailgate/core/testing`). Marks the gateway started, like listen().
   */
  openSession(io: EngineIO, peer: Partial<Omit<PeerInfo, 'internal'>> & { tlsAvailable?: boolean } = {}): SmtpSession {
    this.started = true;
    const session = new SmtpSession(this.engineContext(peer.tlsAvailable ?? false), io, {
      id: peer.id ?? `T${Math.random().toString(36).slice(2, 10).toUpperCase()}`,
      remoteAddress: peer.remoteAddress ?? '127.0.0.1',
      remotePort: peer.remotePort ?? 50000,
      localAddress: peer.localAddress ?? '127.0.0.1',
      localPort: peer.localPort ?? 25,
      ...(peer.tls ? { tls: peer.tls } : {}),
    });
    return session;
  }

  /**
   * Hand a message the gateway made itself (a bounce, a delivery report) to its own
   * plugins, as Postfix's bounce daemon hands its mail to cleanup: the storage plugin
   * that claims a recipient delivers it (a local mailbox, or the relay for anyone
   * else). No client-policy hook runs (see `Session.internal`). Resolves once the
   * message was taken (`queued`) or refused, with the reply that decided.
   */
  submit(options: SubmitOptions): Promise<SubmitResult> {
    if (this.submissionsClosed) {
      return Promise.resolve({ id: undefined, queued: false, accepted: [], refused: [], reply: { code: 421, enhanced: '4.3.2', text: `${this.hostname} Service shutting down, try again later` } });
    }
    // Not openSession(): a submission (from a plugin's start-up, before listen()) must not
    // close the hooks, and only this path may mark a session internal.
    const open = (io: EngineIO) =>
      new SmtpSession(this.engineContext(false), io, { id: `I${nextSessionId()}`, remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0, internal: true });
    // Registered at once (before any await), so a shutdown starting meanwhile waits for it.
    const run = this.spool.init().then(() => submitMessage(open, this.hostname, options));
    this.submissions.add(run);
    return run.finally(() => this.submissions.delete(run));
  }

  private engineContext(tlsAvailable: boolean): EngineContext {
    return {
      hooks: this.hooks,
      options: this.engineOptions,
      spool: this.spool,
      log: this.log,
      tlsAvailable,
      isLocalDomain: (domain) => this.localDomains.has(foldDomain(domain)),
      transactionDone: (session, tx, reply, ms) => this.logTransaction(session, tx, reply, ms),
      commandRefused: (session, stage, reply, detail) => this.logRefusal(session, stage, reply, detail),
      // (with info off, sessions do not even build the summary)
      ...(this.log.enabled('info')
        ? {
            sessionEnded: (session: SmtpSession, summary: SessionSummary) =>
              this.log.info('session closed', {
                session: session.id,
                client: session.remoteAddress,
                helo: session.heloName,
                user: session.user,
                tls: session.tls !== undefined,
                ...summary,
              }),
          }
        : {}),
    };
  }

  /** One line per refused connect/HELO/MAIL/RCPT, like Postfix's `NOQUEUE: reject: RCPT from …`. */
  private logRefusal(session: SmtpSession, stage: string, reply: Reply, detail: RefusalDetail): void {
    if (!this.log.enabled('info')) return;
    const tx = session.transaction;
    this.log.info('refused', {
      session: session.id,
      stage,
      client: session.internal ? 'internal' : session.remoteAddress,
      helo: detail.helo ?? session.heloName,
      user: session.user,
      ...(detail.from !== undefined || tx ? { from: detail.from ?? tx!.senderText } : {}),
      ...(detail.recipient !== undefined ? { rcpt: detail.recipient } : {}),
      reply: replyLine(reply),
      ...(detail.reason ? { reason: detail.reason } : {}),
    });
  }

  /** One log line per transaction with its verdicts (the audit trail). */
  private logTransaction(session: SmtpSession, tx: Transaction, reply: Reply, ms: number): void {
    const level = reply.code < 400 ? 'info' : 'warn';
    if (!this.log.enabled(level)) return;
    this.log[level]('transaction', {
      session: session.id,
      tx: tx.id,
      client: session.internal ? 'internal' : session.remoteAddress,
      helo: session.heloName,
      user: session.user,
      tls: session.tls !== undefined,
      from: tx.senderText,
      rcpts: tx.recipients.map((r: Recipient) => (r.claimedBy ? `${r.text} (${r.claimedBy})` : r.text)),
      size: tx.message?.size,
      result: reply.code < 300 ? 'accepted' : reply.code < 500 ? 'tempfailed' : 'rejected',
      reply: replyLine(reply),
      ms: Math.round(ms),
      audit: tx.audit,
    });
  }

  private recordTap(outcome: TapOutcome, args: readonly unknown[]): void {
    const key = `${outcome.plugin}\u0000${outcome.hook}`;
    let stats = this.stats.get(key);
    if (!stats) this.stats.set(key, (stats = { calls: 0, totalMs: 0, maxMs: 0, errors: 0 }));
    stats.calls++;
    stats.totalMs += outcome.ms;
    if (outcome.ms > stats.maxMs) stats.maxMs = outcome.ms;
    if (outcome.aborted) {
      // It gave up because the client left (its signal): nobody's fault, nothing to warn about.
      this.log.debug('plugin aborted', { plugin: outcome.plugin, hook: outcome.hook, error: outcome.error, ms: Math.round(outcome.ms) });
    } else if (outcome.error !== undefined) {
      stats.errors++;
      // Which session and transaction, and where in the plugin: enough to find the bug.
      const session = args[0] instanceof SmtpSession ? args[0].id : undefined;
      const failedTx = args[1] instanceof Transaction ? args[1].id : undefined;
      const error = outcome.error;
      this.log.warn(outcome.timedOut ? 'plugin timed out' : 'plugin failed', {
        plugin: outcome.plugin,
        hook: outcome.hook,
        session,
        tx: failedTx,
        error,
        ...(outcome.timedOut ? {} : { stack: stackOf(error) }),
        ms: Math.round(outcome.ms),
      });
    }
    const tx = args[1];
    if (!(tx instanceof Transaction)) return;
    const recipient = outcome.hook === 'rcpt' || outcome.hook === 'claim' ? (args[2] as Recipient) : undefined;
    if (outcome.hook === 'claim' && outcome.verdict?.kind === 'accept' && recipient) {
      recipient.claimedBy ??= outcome.plugin;
    }
    if (!outcome.verdict && outcome.error === undefined) return;
    tx.audit.push({
      hook: outcome.hook,
      plugin: outcome.plugin,
      verdict: outcome.timedOut ? 'timeout' : outcome.error !== undefined ? 'error' : outcome.hook === 'claim' && outcome.verdict?.kind === 'accept' ? 'claim' : outcome.verdict!.kind,
      ...(outcome.verdict?.reason || outcome.error !== undefined ? { reason: outcome.verdict?.reason ?? errorMessage(outcome.error) } : {}),
      ...(recipient ? { recipient: recipient.text } : {}),
      ms: Math.round(outcome.ms * 1000) / 1000,
    });
  }
}

/**
 * Create a gateway from a config object (everything optional, safe defaults:
 * loopback only, no relaying, limits on). Tap `gateway.hooks` or `use()` plugins,
 * then `await gateway.listen()`.
 */
export function createGateway(config: GatewayConfigInput | GatewayConfig = {}, options: GatewayOptions = {}): Gateway {
  const resolved = isResolved(config) ? config : resolveConfig(config);
  return new Gateway(resolved, options);
}

const RESOLVED = Symbol.for('mailgate.resolvedConfig');

/** Mark a config as already validated (loadGateway passes one), so it is not parsed twice. */
export function markResolved(config: GatewayConfig): GatewayConfig {
  Object.defineProperty(config, RESOLVED, { value: true });
  return config;
}

function isResolved(config: object): config is GatewayConfig {
  return (config as Record<symbol, unknown>)[RESOLVED] === true;
}

/** Case-fold a domain and bring an IDN to its A-label form, so `Bücher.Example.` and `xn--bcher-kva.example` match. */
function foldDomain(domain: string): string {
  const trimmed = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (trimmed.startsWith('[')) return trimmed.toLowerCase();
  return domainToASCII(trimmed) || trimmed.toLowerCase();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A reply as one log field: `550 5.1.1 <a@b>: User unknown`. */
/** The reply as the client got it (formatReply's sanitised lines), on one line for the log. */
function replyLine(reply: Reply): string {
  return formatReply(reply)
    .split('\r\n')
    .filter((line) => line !== '')
    .map((line, i) => (i === 0 ? line : line.slice(4)))
    .join(' ');
}
