/**
 * @mailgate/plugin-spam: the taps. The flow is postscreen's and SpamAssassin's put
 * together:
 *
 * - `connect`: the client's DNSBL/DNSWL lookups START (nobody waits for them yet);
 * - `mail`: SPF and the sender/HELO domain blocklists start;
 * - `rcpt`: they are awaited; a client whose envelope score alone reaches `reject` is
 *   refused here (550 5.7.1 naming the lists), before it sends a byte of message, and so
 *   is an SPF fail when `spf.rejectFail` is on (550 5.7.23);
 * - `data`: the head of the message (at most maxScanSize) is parsed; rules, Bayes, URI
 *   and From-domain lists run; the total decides: headers, 451 or 550.
 *
 * The result is left on `tx.data.spam` for the plugins after this one (storage may file
 * tagged mail into a Junk folder).
 */
import { resolve } from 'node:path';
import { definePlugin, untilAborted, reject, tempfail, type Logger, type PluginGatewayView, type Session, type SpamVerdict, type TapContext, type Transaction, type Verdict } from '@mailgate/core';
import { BayesFile } from './bayes-file.js';
import { authResultsValue } from './auth/index.js';
import { SpamChecks, type AuthCheckResult, type EnvelopeResult, type IpListResult } from './checks.js';
import { spamCommand } from './commands.js';
import { spamHeaders } from './headers.js';
import { NetworkList } from './networks.js';
import { spamOptionsSchema, type SpamOptions } from './options.js';
import { readStreamHead } from './read-head.js';
import { decideAction, formatScore, totalScore, type SpamAction, type SpamTest } from './score.js';
import { receivedSpfHeader } from './spf/index.js';

/**
 * What the plugin concluded about a message, on `tx.data.spam`: the core's `SpamVerdict`
 * (score, flagged: what storage plugins read) with this plugin's details merged in.
 */
export type SpamResult = SpamVerdict;

declare module '@mailgate/core' {
  interface SpamVerdict {
    /** Sum of the points of `tests` (0 when skipped). */
    score: number;
    /** Every check that fired, envelope checks first. */
    tests: SpamTest[];
    /** score >= tag: the message carries X-Spam-Flag: YES. */
    flagged: boolean;
    action: SpamAction;
    /** Why the message was not scored at all: an authenticated or trusted client. */
    skipped?: 'authenticated' | 'trusted';
    /** False when the message was over maxScanSize: only the envelope checks scored it. */
    contentChecked: boolean;
  }
}

interface SessionState {
  trusted: boolean;
  /** Started at connect; every transaction of the session shares it. */
  ipTests: Promise<IpListResult> | undefined;
  /** Aborted at disconnect: lookups nobody will read stop. */
  gone: AbortController;
}

interface TxState {
  envelope: Promise<EnvelopeResult>;
  /**
   * Aborted at `reset`, when the transaction ends however it ends: its SPF and RHSBL
   * lookups stop. Without it a client looping MAIL FROM / RSET (one line each) started a
   * full SPF evaluation per loop, each running on for up to dnsTimeout: lookups without bound.
   */
  ended: AbortController;
  /** The RCPT answer, the same for every recipient of the transaction. */
  decision: Promise<Verdict | undefined> | undefined;
}

const NO_TESTS: IpListResult = { tests: [], unanswered: 0 };
const NO_ENVELOPE: EnvelopeResult = { tests: [] };

export const spamPlugin = definePlugin({
  name: '@mailgate/plugin-spam',
  core: '0.x',
  options: spamOptionsSchema,
  commands: { spam: spamCommand },
  async setup({ tap, options, gateway, log, configDir }) {
    // A check gives up after dnsTimeout and only loses its points; the core fails a tap
    // that runs past pluginTimeout with a 451. The other way round, slow DNS would turn
    // every RCPT and DATA into a 451.
    if (options.dnsTimeout >= gateway.config.pluginTimeout) {
      throw new Error(`dnsTimeout (${options.dnsTimeout} ms) must be shorter than the gateway's pluginTimeout (${gateway.config.pluginTimeout} ms)`);
    }
    const bayes = options.bayes
      ? await BayesFile.open(resolve(configDir, options.bayes.file), {
          reloadInterval: options.bayes.reloadInterval,
          log,
          store: { minSpam: options.bayes.minSpam, minHam: options.bayes.minHam },
        }).catch((error: unknown) => {
          throw new Error(`bayes.file: ${error instanceof Error ? error.message : String(error)}`);
        })
      : undefined;
    const spam = new SpamFilter(options, gateway, log, new SpamChecks(options, gateway.dns, log, bayes));
    tap('connect', (session) => spam.connect(session));
    tap('mail', (session, tx) => spam.mail(session, tx));
    tap('rcpt', (session, tx, _rcpt, call) => spam.rcpt(session, tx, call));
    tap('data', (session, tx, call) => spam.data(session, tx, call));
    tap('reset', (_session, tx) => spam.reset(tx));
    tap('disconnect', (session) => spam.disconnect(session));
  },
});

class SpamFilter {
  private readonly sessions = new WeakMap<Session, SessionState>();
  private readonly transactions = new WeakMap<Transaction, TxState>();
  private readonly trusted: NetworkList;

  constructor(
    private readonly options: SpamOptions,
    private readonly gateway: PluginGatewayView,
    private readonly log: Logger,
    private readonly checks: SpamChecks,
  ) {
    this.trusted = new NetworkList(options.trustedNetworks);
  }

  connect(session: Session): undefined {
    this.state(session);
    return undefined;
  }

  mail(session: Session, tx: Transaction): undefined {
    if (this.skipped(session)) return undefined;
    this.txState(session, tx);
    return undefined;
  }

  async rcpt(session: Session, tx: Transaction, call: TapContext): Promise<Verdict | undefined> {
    if (this.skipped(session)) return undefined;
    const state = this.txState(session, tx);
    // Computed once per transaction, without this call's signal: the next recipient reuses it.
    state.decision ??= this.envelopeDecision(session, state);
    return untilAborted(state.decision, call.signal);
  }

  async data(session: Session, tx: Transaction, call: TapContext): Promise<Verdict | undefined> {
    const skipped = this.skipped(session);
    if (skipped) {
      tx.data.spam = { score: 0, tests: [], flagged: false, action: 'accept', skipped, contentChecked: false };
      return undefined;
    }
    const message = tx.message;
    if (!message) return undefined;
    const started = performance.now();
    const state = this.txState(session, tx);
    const [ip, envelope] = await Promise.all([this.ipTests(session), state.envelope]);
    const tests = [...ip.tests, ...envelope.tests];

    const limit = this.options.maxScanSize;
    const contentChecked = message.size <= limit;
    // A message over the limit gets no DKIM check either: its body hash needs the whole body.
    let auth: AuthCheckResult | undefined;
    if (contentChecked) {
      try {
        // The size is known, but read no more than the limit whatever it says.
        const { bytes } = await readStreamHead(message.stream(), limit, call.signal);
        const [content, authResult] = await Promise.all([
          this.checks.content(bytes, { signal: call.signal }),
          this.checks.authentication(bytes, envelope.spf?.result, { signal: call.signal }),
        ]);
        tests.push(...content.tests, ...authResult.tests);
        auth = authResult;
      } catch (error) {
        if (call.signal.aborted) throw error;
        this.log.warn('spam: content checks failed, skipped', { session: session.id, tx: tx.id, error });
      }
    }

    const score = totalScore(tests);
    let action = decideAction(score, this.options);
    // opendmarc's RejectFailures: the domain asked for it, after its pct= sampling; never on
    // temperror. A From: that cannot be evaluated (permerror, disposition reject) fails closed.
    const dmarc = auth?.dmarc;
    const dmarcReject = this.options.dmarc.rejectReject && (dmarc?.result === 'fail' || dmarc?.result === 'permerror') && dmarc.disposition === 'reject';
    if (dmarcReject) action = 'reject';
    // Allowlists that did not answer could have taken points off: our DNS trouble must not
    // refuse the mail for good when only those points stood between it and reject. 451: retry.
    const unsure = !dmarcReject && action === 'reject' && this.options.reject !== false && score - ip.unanswered < this.options.reject;
    if (unsure) action = 'tempfail';
    const flagged = score >= this.options.tag;
    tx.data.spam = { score, tests, flagged, action, contentChecked };
    this.log.info('spam: scanned', {
      session: session.id,
      tx: tx.id,
      client: session.remoteAddress,
      score,
      action,
      tests: tests.map((t) => `${t.name}=${formatScore(t.score)}`).join(','),
      size: message.size,
      contentChecked,
      ms: Math.round(performance.now() - started),
    });

    if (dmarcReject) {
      if (dmarc.result === 'permerror') {
        return reject('Message rejected: its From: field cannot be evaluated for DMARC', {
          code: 550,
          enhanced: '5.7.1',
          reason: `spam: DMARC permerror (${dmarc.comment ?? 'From: not evaluated'}), score ${formatScore(score)}`.slice(0, 400),
        });
      }
      return reject(`Message rejected: the DMARC policy of ${dmarc.domain} says reject`.slice(0, 300), {
        code: 550,
        enhanced: '5.7.1',
        reason: `spam: DMARC fail for ${dmarc.domain} (p=reject), score ${formatScore(score)}`,
      });
    }
    if (action === 'reject') {
      return reject(this.options.rejectMessage, { code: 550, enhanced: '5.7.1', reason: `spam: score ${formatScore(score)} >= ${this.options.reject}` });
    }
    if (unsure) {
      return tempfail(this.options.tempfailMessage, { code: 451, enhanced: '4.7.1', reason: `spam: score ${formatScore(score)} >= ${this.options.reject}, but allowlists worth ${formatScore(ip.unanswered)} did not answer` });
    }
    if (action === 'tempfail') {
      return tempfail(this.options.tempfailMessage, { code: 451, enhanced: '4.7.1', reason: `spam: score ${formatScore(score)} >= ${this.options.tempfail}` });
    }
    if (this.options.headers.removeExisting) await this.removeForeignHeaders(tx);
    this.addHeaders(tx, envelope, { score, tests, flagged }, auth);
    return undefined;
  }

  /** The sender's X-Spam-* fields, and Authentication-Results fields naming us as their authserv-id. */
  private async removeForeignHeaders(tx: Transaction): Promise<void> {
    const us = domainKey(this.gateway.hostname);
    const removed = await tx.message!.removeHeaders((name, value) => {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-spam-')) return true;
      if (lower !== 'authentication-results') return false;
      const id = authservId(value);
      return id !== undefined && domainKey(id) === us;
    });
    if (removed > 0) this.log.debug('spam: removed header fields the sender put in', { tx: tx.id, removed });
  }

  reset(tx: Transaction): void {
    this.transactions.get(tx)?.ended.abort();
  }

  disconnect(session: Session): void {
    const state = this.sessions.get(session);
    state?.gone.abort();
  }

  // --- helpers -------------------------------------------------------------------------

  private state(session: Session): SessionState {
    let state = this.sessions.get(session);
    if (!state) {
      const trusted = this.trusted.has(session.remoteAddress);
      state = { trusted, ipTests: undefined, gone: new AbortController() };
      // Like postscreen: the lookups run while the client says hello; nobody waits yet.
      if (!trusted) state.ipTests = this.checks.ipListCheck(session.remoteAddress, state.gone.signal).catch(() => NO_TESTS);
      this.sessions.set(session, state);
    }
    return state;
  }

  private ipTests(session: Session): Promise<IpListResult> {
    return this.state(session).ipTests ?? Promise.resolve(NO_TESTS);
  }

  private skipped(session: Session): SpamResult['skipped'] {
    if (this.state(session).trusted) return 'trusted';
    if (this.options.skipAuthenticated && session.user !== undefined) return 'authenticated';
    return undefined;
  }

  private txState(session: Session, tx: Transaction): TxState {
    let state = this.transactions.get(tx);
    if (!state) {
      const query = { ip: session.remoteAddress, sender: tx.senderText, helo: session.heloName ?? '', receiver: this.gateway.hostname };
      // `reset` ends every transaction, a dropped connection's too: no need for the session's signal.
      const ended = new AbortController();
      const envelope = this.checks.envelope(query, ended.signal).catch(() => NO_ENVELOPE);
      state = { envelope, decision: undefined, ended };
      this.transactions.set(tx, state);
    }
    return state;
  }

  private async envelopeDecision(session: Session, state: TxState): Promise<Verdict | undefined> {
    const [ip, envelope] = await Promise.all([this.ipTests(session), state.envelope]);
    const spf = envelope.spf?.result;
    if (this.options.spf.rejectFail && spf?.result === 'fail') {
      const why = spf.explanation ? `: ${spf.explanation}` : '';
      return reject(`SPF check failed for ${spf.domain || 'the sender domain'}${why}`.slice(0, 400), {
        code: 550,
        enhanced: '5.7.23',
        reason: `spam: SPF fail for ${envelope.spf!.query.sender || '<>'} from ${session.remoteAddress}${spf.mechanism ? ` (${spf.mechanism})` : ''}`,
      });
    }
    const reject_ = this.options.reject;
    const tests = [...ip.tests, ...envelope.tests];
    const score = totalScore(tests);
    if (reject_ === false || score < reject_) return undefined;
    // An allowlist that did not answer might have vouched for the client: leave it to DATA (451 there).
    if (score - ip.unanswered < reject_) return undefined;
    const zones = [...new Set(tests.filter((t) => t.list !== undefined && t.score > 0).map((t) => t.list!))];
    const text = zones.length > 0 ? `Service unavailable; client [${session.remoteAddress}] blocked using ${zones.join(', ')}` : `Service unavailable; client [${session.remoteAddress}] refused (envelope score ${formatScore(score)})`;
    return reject(text, {
      code: 550,
      enhanced: '5.7.1',
      reason: `spam: envelope score ${formatScore(score)} >= ${reject_}: ${tests.map((t) => `${t.name}=${formatScore(t.score)}`).join(',')}`,
    });
  }

  private addHeaders(tx: Transaction, envelope: EnvelopeResult, result: { score: number; tests: SpamTest[]; flagged: boolean }, auth: AuthCheckResult | undefined): void {
    const message = tx.message!;
    const spf = this.options.spf.enabled && envelope.spf ? { result: envelope.spf.result, sender: envelope.spf.query.sender, helo: envelope.spf.query.helo } : undefined;
    if (this.options.headers.authResults && (spf || auth?.dkim || auth?.dmarc)) {
      // Built and sanitized in auth-results.ts: every value from the message or DNS is quoted, on one line.
      message.prependRawHeader('Authentication-Results', authResultsValue({ receiver: this.gateway.hostname, spf, dkim: auth?.dkim?.signatures, dmarc: auth?.dmarc }));
    }
    if (this.options.spf.header && envelope.spf) {
      try {
        message.prependHeader('Received-SPF', receivedSpfHeader(envelope.spf.result, envelope.spf.query, this.gateway.hostname));
      } catch (error) {
        this.log.warn('spam: cannot add Received-SPF', { tx: tx.id, error });
      }
    }
    // prependRawHeader puts each header on top: add them bottom first.
    for (const header of spamHeaders(result, this.options.tag, this.options.headers).reverse()) message.prependRawHeader(header.name, header.value);
  }
}

/**
 * An authserv-id as readers compare it: without case, and "mx.test." (the absolute form)
 * is the same host as "mx.test", so a forged field written either way claims to be ours.
 */
function domainKey(id: string): string {
  return id.toLowerCase().replace(/\.$/, '');
}

/**
 * The authserv-id of an Authentication-Results value (RFC 8601 §2.2): a token or a
 * quoted-string after optional comments and white space. Readers skip comments and
 * unquote, so "(x) mx.test;", "\"mx.test\";" and "mx.test(x);" all claim mx.test: taking the
 * first space-separated word would let such a forged field through. undefined: unparsable.
 */
export function authservId(value: string): string | undefined {
  let i = 0;
  const n = value.length;
  const skipCfws = (): void => {
    for (;;) {
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
      if (value[i] !== '(') return;
      let depth = 0;
      for (; i < n; i++) {
        const c = value[i];
        if (c === '\\') i++;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) {
          i++;
          break;
        }
      }
    }
  };
  skipCfws();
  if (value[i] === '"') {
    let id = '';
    for (i++; i < n && value[i] !== '"'; i++) id += value[i] === '\\' ? (value[++i] ?? '') : value[i];
    return i < n ? id : undefined;
  }
  const start = i;
  while (i < n && !/[\s;()"]/.test(value[i]!)) i++;
  return i > start ? value.slice(start, i) : undefined;
}
