/**
 * Every check of the plugin, as functions from what is known at one step to the tests
 * that fired. The plugin's taps and `mailgate spam check` both go through here, so a
 * message scores the same on the command line as in the gateway.
 *
 * A check that fails (DNS trouble, a bug, hostile input) adds nothing and is logged: a
 * broken check must never reject mail, only lose its points.
 */
import { untilAborted, type DnsResolver, type Logger } from '@mailgate/core';
import { parseContent, type MessageContent } from './content.js';
import { parseMailbox } from './rules-address.js';
import { parseMailDate } from './rules-date.js';
import { domainTargets, queryDomainLists, queryIpLists, type DnsListHit, type DomainCheck, type DomainList, type IpList, type MessageDomains } from './dnslists.js';
import { checkSpf, checkSpfHelo, type SpfQuery, type SpfResult } from './spf/index.js';
import { compileRules, evaluateRules } from './rules.js';
import type { BayesFile } from './bayes-file.js';
import { authTests, checkAuth, type AuthResult, type AuthSettings } from './auth/index.js';
import type { SpamOptions } from './options.js';
import {
  bayesTests,
  DEFAULT_BAYES_SCORES,
  DEFAULT_DKIM_SCORES,
  DEFAULT_SPF_HELO_SCORES,
  DEFAULT_SPF_SCORES,
  spfTest,
  testName,
  type BayesBand,
  type SpamTest,
  type SpfResultName,
} from './score.js';

/** What the envelope checks found, before the message. */
export interface EnvelopeResult {
  tests: SpamTest[];
  /** The envelope sender's SPF result, for Received-SPF and rejectFail. */
  spf?: { result: SpfResult; query: SpfQuery } | undefined;
}

export interface IpListResult {
  tests: SpamTest[];
  /** Points the allowlists that did not answer could have taken off (0 when all answered). */
  unanswered: number;
}

export interface ContentResult {
  tests: SpamTest[];
  content: MessageContent;
}

export interface AuthCheckResult extends AuthResult {
  tests: SpamTest[];
}

type Compiled = ReturnType<typeof compileRules>;

function defined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

function withDefaults<K extends string>(defaults: Readonly<Record<K, number>>, overrides: Partial<Record<K, number | undefined>>): Record<K, number> {
  const out = { ...defaults } as Record<K, number>;
  for (const [key, value] of Object.entries(overrides) as Array<[K, number | undefined]>) if (value !== undefined) out[key] = value;
  return out;
}

export class SpamChecks {
  private readonly rules: Compiled;
  private readonly spfScores: Record<SpfResultName, number>;
  private readonly heloScores: Record<SpfResultName, number>;
  private readonly bayesScores: Record<BayesBand, number>;
  private readonly ipLists: IpList[];
  private readonly uriLists: DomainList[];
  readonly auth: AuthSettings;

  constructor(
    private readonly options: SpamOptions,
    private readonly dns: DnsResolver,
    private readonly log: Logger,
    private readonly bayes: BayesFile | undefined,
  ) {
    this.rules = compileRules(options.rules);
    this.spfScores = withDefaults(DEFAULT_SPF_SCORES, options.spf.scores);
    this.heloScores = withDefaults(DEFAULT_SPF_HELO_SCORES, options.spf.heloScores);
    this.bayesScores = withDefaults(DEFAULT_BAYES_SCORES, options.bayes?.scores ?? {});
    const dmarc = options.dmarc;
    this.auth = {
      dkim: { enabled: options.dkim.enabled, maxSignatures: options.dkim.maxSignatures, scores: withDefaults<keyof typeof DEFAULT_DKIM_SCORES>(DEFAULT_DKIM_SCORES, options.dkim.scores) },
      dmarc: {
        enabled: dmarc.enabled,
        scores: { pass: dmarc.passScore, reject: dmarc.rejectScore, quarantine: dmarc.quarantineScore, none: dmarc.noneScore, missing: dmarc.missingScore },
      },
    };
    // A uribl entry is for URL domains whatever its `check` says; an rhsbl entry may include 'uri' too.
    this.uriLists = [...options.uribl.map((l) => ({ ...l, check: URI_ONLY })), ...options.rhsbl];
    // An allowlist lowers the score whatever sign its weight was written with.
    this.ipLists = [...options.dnsbl, ...options.dnswl.map((list) => ({ ...list, weight: -Math.abs(list.weight) }))];
  }

  /** DNSBL and DNSWL tests for the client's address. */
  async ipListTests(ip: string, signal?: AbortSignal): Promise<SpamTest[]> {
    return (await this.ipListCheck(ip, signal)).tests;
  }

  /**
   * DNSBL and DNSWL tests, and `unanswered`: the points the allowlists that gave no
   * answer (timeout, DNS error, refusal) could have taken off. Their silence must not
   * refuse mail for good: the plugin answers 451 when only those points stood between
   * the score and `reject`.
   */
  async ipListCheck(ip: string, signal?: AbortSignal): Promise<IpListResult> {
    if (this.ipLists.length === 0) return { tests: [], unanswered: 0 };
    const allowlists = this.ipLists.filter((list) => list.weight < 0);
    const credit = (lists: typeof allowlists): number => lists.reduce((sum, list) => sum - list.weight, 0);
    return this.guard('dns lists', signal, async (deadline) => {
      const { hits, problems } = await queryIpLists(ip, this.ipLists, this.dns, deadline);
      this.report('dns lists', problems, { ip });
      const failed = new Set(problems.map((p) => p.list));
      return { tests: listTests(hits, 'RCVD_IN', 'client'), unanswered: credit(allowlists.filter((l) => failed.has(l.name))) };
    }, { tests: [], unanswered: credit(allowlists) }, false);
  }

  /** SPF for the envelope sender and the HELO name, and the sender/HELO domain blocklists. */
  async envelope(query: SpfQuery, signal?: AbortSignal): Promise<EnvelopeResult> {
    const [spf, rhsbl] = await Promise.all([this.spf(query, signal), this.envelopeDomainTests(query, signal)]);
    return { tests: [...spf.tests, ...rhsbl], spf: spf.mailFrom ? { result: spf.mailFrom, query } : undefined };
  }

  private async spf(query: SpfQuery, signal: AbortSignal | undefined): Promise<{ tests: SpamTest[]; mailFrom?: SpfResult }> {
    const spf = this.options.spf;
    if (!spf.enabled) return { tests: [] };
    const options = { dns: this.dns };
    const [mailFrom, helo] = await Promise.all([
      this.guard('spf', signal, (deadline) => checkSpf(query, { ...options, signal: deadline }), undefined),
      spf.helo && query.helo ? this.guard('spf helo', signal, (deadline) => checkSpfHelo(query, { ...options, signal: deadline }), undefined) : undefined,
    ]);
    const tests = [
      mailFrom ? spfTest(mailFrom.result, 'mailfrom', this.spfScores, mailFrom.domain) : undefined,
      helo ? spfTest(helo.result, 'helo', this.heloScores, helo.domain) : undefined,
    ].filter(defined);
    return mailFrom ? { tests, mailFrom } : { tests };
  }

  private async envelopeDomainTests(query: SpfQuery, signal: AbortSignal | undefined): Promise<SpamTest[]> {
    const [sender, helo] = await Promise.all([
      query.sender ? this.domainTests({ sender: query.sender }, this.options.rhsbl, 'sender', signal) : NONE,
      query.helo ? this.domainTests({ helo: query.helo }, this.options.rhsbl, 'helo', signal) : NONE,
    ]);
    return [...sender, ...helo];
  }

  /**
   * DKIM and DMARC for a whole message of at most maxScanSize bytes (the caller checks the
   * size: a larger message gets no DKIM check, its body hash could not be computed from
   * what was read). `spf` is the envelope's SPF result, for DMARC's SPF alignment. Within
   * dnsTimeout; DNS trouble gives temperror results, a failure no tests at all.
   */
  async authentication(raw: Buffer, spf: SpfResult | undefined, options: { signal?: AbortSignal | undefined; random?: () => number } = {}): Promise<AuthCheckResult> {
    if (!this.auth.dkim.enabled && !this.auth.dmarc.enabled) return { tests: [] };
    return this.guard('dkim/dmarc', options.signal, async (deadline) => {
      const result = await checkAuth(raw, this.auth, { dns: this.dns, spf, signal: deadline, ...(options.random ? { random: options.random } : {}) });
      return { ...result, tests: authTests(result, this.auth) };
    }, { tests: [] });
  }

  /**
   * Rules, Bayes, URI blocklists and the From-domain blocklists for a message's head (at
   * most maxScanSize bytes). `now` is the time of receipt the date rules compare with:
   * the gateway's clock by default; 'received' takes the date of the topmost Received:
   * header, as SpamAssassin does for mail checked after the fact (`mailgate spam check`).
   */
  async content(raw: Uint8Array, options: { signal?: AbortSignal | undefined; now?: number | 'received' } = {}): Promise<ContentResult> {
    const { signal } = options;
    const content = await parseContent(raw, { maxBytes: this.options.maxScanSize });
    const now = options.now === 'received' ? (receivedAt(content) ?? Date.now()) : (options.now ?? Date.now());
    const tests: SpamTest[] = [];
    tests.push(...this.guardSync('rules', () => evaluateRules(this.rules, content, now).map((t) => ({ name: t.name, score: t.score, describe: t.describe })), []));
    if (this.bayes) {
      // current() never waits: a newer file is loaded in the background
      const store = this.bayes.current();
      const verdict = this.guardSync('bayes', () => store.classify(content), undefined);
      if (verdict) tests.push(...bayesTests(verdict.probability, this.bayesScores));
    }
    const [uri, from] = await Promise.all([this.uriTests(content, signal), this.fromTests(content, signal)]);
    tests.push(...uri, ...from);
    return { tests, content };
  }

  private async uriTests(content: MessageContent, signal: AbortSignal | undefined): Promise<SpamTest[]> {
    if (content.urlHosts.length === 0) return [];
    return this.domainTests({ urlHosts: content.urlHosts }, this.uriLists, 'uri', signal);
  }

  private async fromTests(content: MessageContent, signal: AbortSignal | undefined): Promise<SpamTest[]> {
    const from = parseMailbox(content.from);
    if (!from?.domain) return [];
    return this.domainTests({ from: from.address }, this.options.rhsbl, 'from', signal);
  }

  private async domainTests(where: MessageDomains, lists: DomainList[], check: DomainCheck, signal: AbortSignal | undefined): Promise<SpamTest[]> {
    const applicable = lists.filter((l) => l.check.includes(check));
    if (applicable.length === 0) return [];
    const targets = domainTargets(where, { neverQuery: this.options.neverQuery });
    if (targets.length === 0) return [];
    const what = WHAT[check];
    // The lookups stop at the deadline and return what came in by then: no race, keep the partial answer.
    return this.guard(`domain lists (${check})`, signal, async (deadline) => {
      const { hits, problems } = await queryDomainLists(targets, applicable, this.dns, deadline);
      this.report(`domain lists (${check})`, problems, {});
      return listTests(hits, check === 'uri' ? 'URIBL' : `RHSBL_${check.toUpperCase()}`, what);
    }, [], false);
  }

  private report(what: string, problems: readonly unknown[], fields: Record<string, unknown>): void {
    if (problems.length > 0) this.log.warn(`spam: ${what}: ${problems.length} lookup problem(s)`, { ...fields, problems: problems.slice(0, 5) });
  }

  /**
   * Run a check with a deadline (dnsTimeout): past it, or when it fails, the check adds
   * nothing. Only the caller's own signal (the client left, the tap timed out) makes it
   * throw, with that signal's reason.
   */
  private async guard<T>(what: string, signal: AbortSignal | undefined, fn: (deadline: AbortSignal) => Promise<T>, fallback: T, race = true): Promise<T> {
    signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.options.dnsTimeout);
    const deadline = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const result = race ? await untilAborted(fn(deadline), deadline) : await fn(deadline);
      signal?.throwIfAborted();
      return result;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) this.log.warn(`spam: ${what} check gave no answer within ${this.options.dnsTimeout} ms, skipped`, {});
      else this.log.warn(`spam: ${what} check failed, skipped`, { error });
      return fallback;
    }
  }

  private guardSync<T>(what: string, fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (error) {
      this.log.warn(`spam: ${what} check failed, skipped`, { error });
      return fallback;
    }
  }
}

const NONE: SpamTest[] = [];
const URI_ONLY: DomainCheck[] = ['uri'];
const WHAT: Record<DomainCheck, string> = { sender: 'sender domain', helo: 'HELO name', from: 'From: domain', uri: 'URL domain' };

/**
 * One test per list that listed something: several listed URL domains of one list count
 * once, as in SpamAssassin and rspamd. The points are the list's weight.
 */
function listTests(hits: readonly DnsListHit[], prefix: string, what: string): SpamTest[] {
  const byList = new Map<string, { hit: DnsListHit; listed: string[]; answers: Set<string> }>();
  for (const hit of hits) {
    let entry = byList.get(hit.list);
    if (!entry) byList.set(hit.list, (entry = { hit, listed: [], answers: new Set() }));
    if (!entry.listed.includes(hit.listed)) entry.listed.push(hit.listed);
    for (const a of hit.answers) entry.answers.add(a);
  }
  return [...byList.values()].map(({ hit, listed, answers }) => {
    const more = listed.length > 3 ? ` (+${listed.length - 3})` : '';
    return {
      name: testName(prefix, hit.list),
      score: hit.weight,
      list: hit.zone,
      describe: `${what} ${listed.slice(0, 3).join(', ')}${more} listed in ${hit.zone} (${[...answers].slice(0, 3).join(', ')})`,
    };
  });
}

/** The date of the topmost Received: header (after its last ";"), if it has a readable one. */
export function receivedAt(content: MessageContent): number | undefined {
  const received = content.headers.find((h) => h.name.toLowerCase() === 'received');
  return received ? parseMailDate(received.value.slice(received.value.lastIndexOf(';') + 1)) : undefined;
}
