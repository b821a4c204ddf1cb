import { domainToUnicode } from 'node:url';
import {
  untilAborted,
  accept,
  clientKey,
  definePlugin,
  disconnect,
  formatIp,
  HookStage,
  parseCidr,
  parseIp,
  reject,
  tempfail,
  type IpAddress,
  type Logger,
  type PluginGatewayView,
  type Recipient,
  type Session,
  type TapContext,
  type Transaction,
  type Verdict,
} from '@mailgate/core';
import { MemoryCounterStore, type CounterStore } from './counters.js';
import { resolvePath } from './files.js';
import { DynamicList } from './lists.js';
import { asciiLower, canonicalDomain, canonicalHost } from './names.js';
import { aclOptionsSchema, type AclOptions, type AclStage } from './options.js';
import { canonicalUser, toMatchAddress, type MatchAddress } from './patterns.js';
import { forwardConfirmedNames, type RdnsResult } from './rdns.js';
import { compileRules, firstMatch, type CompiledRule, type RuleSubject } from './rules.js';
import { UserStore, type UserEntry } from './users.js';

/** Per-session state, private to this plugin instance. */
interface SessionState {
  ip: IpAddress | undefined;
  /** Concurrency slot taken at connect, released at disconnect. */
  slot: string | undefined;
  rdns: Promise<RdnsResult> | undefined;
  /** The answer of `rdns`, once it came. */
  rdnsResult: RdnsResult | undefined;
  authFailures: number;
  /**
   * The disconnect tap has run. A connect tap still awaiting the store (an asynchronous,
   * shared CounterStore) sees it when its acquire completes and gives the slot straight
   * back: otherwise the release would have come before the acquire, and the slot would
   * stay taken for good.
   */
  disconnected: boolean;
}

function newState(session: Session): SessionState {
  return { ip: parseIp(session.remoteAddress), slot: undefined, rdns: undefined, rdnsResult: undefined, authFailures: 0, disconnected: false };
}

/** How a recipient's domain stands for relaying. */
type Destination = 'local' | 'relay' | 'literal' | 'remote';

const KEY = 'acl:';

/** A local part that routes elsewhere when some MTA downstream interprets it (`%` hack, bang path, quoted `@`). */
const ROUTING_CHARACTERS = /[@%!]/;

/**
 * @mailgate/plugin-acl: access rules, relay control, rate and concurrency limits,
 * SMTP AUTH users. See the README for every option.
 */
export const aclPlugin = definePlugin({
  name: '@mailgate/plugin-acl',
  core: '0.x',
  options: aclOptionsSchema,
  async setup(context) {
    const { options, gateway, log, configDir } = context;
    const acl = await Acl.create(options, gateway, log, configDir);
    const early = { stage: HookStage.EARLY };
    // The tap context reaches the rules: a reverse DNS wait stops when the tap is no longer wanted.
    context.tap('connect', (session, call) => acl.connect(session, call), early);
    context.tap('helo', (session, info, call) => acl.helo(session, info.name, call), early);
    context.tap('mail', (session, tx, call) => acl.mail(session, tx, call), early);
    context.tap('rcpt', (session, tx, rcpt, call) => acl.rcpt(session, tx, rcpt, call), early);
    if (acl.users) {
      context.tap('auth', (session, credentials) => acl.auth(session, credentials.username, credentials.password, credentials.authzid), early);
    }
    context.tap('disconnect', (session) => acl.disconnect(session));
    context.onClose(() => acl.close());
  },
});

class Acl {
  private readonly sessions = new WeakMap<Session, SessionState>();
  private readonly ownStore: boolean;

  private constructor(
    private readonly options: AclOptions,
    private readonly gateway: PluginGatewayView,
    private readonly log: Logger,
    private readonly store: CounterStore,
    readonly users: UserStore | undefined,
    private readonly localDomains: DynamicList<'domain'>,
    private readonly relayDomains: DynamicList<'domainPattern'>,
    private readonly relayFrom: DynamicList<'ip'>,
    private readonly literals: DynamicList<'ip'>,
    private readonly exempt: DynamicList<'ip'>,
    private readonly rules: Map<AclStage, CompiledRule[]>,
  ) {
    this.ownStore = options.counterStore === undefined;
  }

  static async create(options: AclOptions, gateway: PluginGatewayView, log: Logger, configDir: string): Promise<Acl> {
    const common = { configDir, reloadInterval: options.reloadInterval, log };
    const localDomains = await DynamicList.create('domain', options.localDomains, {
      ...common,
      where: 'localDomains',
      // The core learns every local domain (unknown users there get 550 5.1.1, not 554 5.7.1).
      onEntries: (entries) => {
        for (const entry of entries) {
          const domain = canonicalDomain(entry.trim());
          gateway.addLocalDomain(domain);
          // The core compares domains as text: give it the U-label spelling of an IDN too.
          const unicode = domainToUnicode(domain);
          if (unicode && unicode !== domain) gateway.addLocalDomain(unicode);
        }
      },
    });
    const literals = await DynamicList.create('ip', options.localAddressLiterals, {
      ...common,
      where: 'localAddressLiterals',
      onEntries: (entries) => {
        for (const entry of entries) {
          const net = parseCidr(entry);
          if (!net || net.prefix !== (net.family === 4 ? 32 : 128)) continue;
          const ip = formatIp({ family: net.family, value: net.network });
          gateway.addLocalDomain(net.family === 4 ? `[${ip}]` : `[IPv6:${ip}]`);
        }
      },
    });
    const relayDomains = await DynamicList.create('domainPattern', options.relayDomains, { ...common, where: 'relayDomains' });
    const relayFrom = await DynamicList.create('ip', options.relayFrom, { ...common, where: 'relayFrom' });
    // Postfix does not warn about mynetworks = 0.0.0.0/0, but nothing is more costly to get
    // wrong: say it, in `mailgate check` too (it runs setup).
    for (const entry of options.relayFrom) {
      const net = typeof entry === 'string' ? parseCidr(entry) : undefined;
      if (net && net.prefix < (net.family === 4 ? 8 : 16)) {
        log.warn('relayFrom lets a large part of the internet relay through this gateway: an open relay', { entry });
      }
    }
    const exempt = await DynamicList.create('ip', options.limits.exempt, { ...common, where: 'limits.exempt' });
    const rules = await compileRules(options.rules, common);
    const users = options.auth
      ? await UserStore.open({
          path: resolvePath(configDir, options.auth.usersFile),
          format: options.auth.format,
          reloadInterval: options.reloadInterval,
          log,
        }).catch((error: unknown) => {
          throw new Error(`auth.usersFile: ${error instanceof Error ? error.message : String(error)}`);
        })
      : undefined;
    const store = options.counterStore ?? new MemoryCounterStore({ maxKeys: options.limits.maxCounters });
    return new Acl(options, gateway, log, store, users, localDomains, relayDomains, relayFrom, literals, exempt, rules);
  }

  // --- hooks ---------------------------------------------------------------------------

  async connect(session: Session, call?: TapContext): Promise<Verdict | undefined> {
    // Gone already (the disconnect tap ran first): take nothing that nobody would give back.
    if (this.sessions.get(session)?.disconnected) return undefined;
    const state = newState(session);
    this.sessions.set(session, state);
    const limits = this.options.limits;
    if ((limits.connectionRate || limits.connectionsPerIp) && !(await this.isExempt(state))) {
      const ip = this.clientKey(session);
      if (limits.connectionRate) {
        const n = await this.store.increment(`${KEY}connrate:${ip}`, limits.connectionRate.window);
        if (n > limits.connectionRate.max) {
          return disconnect('Too many connections from your address, try again later', { enhanced: '4.7.0', reason: `acl: connection rate of ${ip} over ${limits.connectionRate.max}` });
        }
      }
      if (limits.connectionsPerIp) {
        const key = `${KEY}conn:${ip}`;
        if (!(await this.store.acquire(key, limits.connectionsPerIp))) {
          return disconnect('Too many concurrent connections from your address, try again later', {
            enhanced: '4.7.0',
            reason: `acl: ${ip} has ${limits.connectionsPerIp} connections open`,
          });
        }
        if (state.disconnected) {
          // The client left while the slot was being taken: its disconnect tap found no
          // slot to release, so release it here.
          await this.store.release(key);
          return undefined;
        }
        state.slot = key;
      }
    }
    if (state.disconnected) return undefined;
    return this.applyRules('connect', session, state, {}, call);
  }

  async helo(session: Session, name: string, call?: TapContext): Promise<Verdict | undefined> {
    const state = this.state(session);
    return this.errorLimit(session) ?? this.applyRules('helo', session, state, { helo: canonicalHost(name) }, call);
  }

  async mail(session: Session, tx: Transaction, call?: TapContext): Promise<Verdict | undefined> {
    const state = this.state(session);
    const tooMany = this.errorLimit(session);
    if (tooMany) return tooMany;
    const sender = toMatchAddress(tx.sender);
    const rate = this.options.limits.messageRate;
    if (rate && !(await this.isExempt(state))) {
      const n = await this.store.increment(`${KEY}msg:${await this.rateKey(session, state, tx)}`, rate.window);
      if (n > rate.max) {
        return tempfail('Too many messages, slow down and try again later', { code: 450, enhanced: '4.7.1', reason: `acl: message rate over ${rate.max}` });
      }
    }
    const auth = this.options.auth;
    if (auth?.bindSender && session.user !== undefined && sender !== null) {
      const user = await this.users!.find(session.user);
      if (!user || !user.owns(sender)) {
        return reject(`<${tx.senderText}>: Sender address rejected: not owned by user ${session.user}`, {
          code: 553,
          enhanced: '5.7.1',
          reason: `acl: sender ${tx.senderText} not among the addresses of ${session.user}`,
        });
      }
    }
    return this.applyRules('mail', session, state, { sender }, call);
  }

  async rcpt(session: Session, tx: Transaction, rcpt: Recipient, call?: TapContext): Promise<Verdict | undefined> {
    const state = this.state(session);
    const tooMany = this.errorLimit(session);
    if (tooMany) return tooMany;
    const rate = this.options.limits.recipientRate;
    if (rate && !(await this.isExempt(state))) {
      const n = await this.store.increment(`${KEY}rcpt:${await this.rateKey(session, state, tx)}`, rate.window);
      if (n > rate.max) {
        return tempfail('Too many recipients, slow down and try again later', { code: 450, enhanced: '4.7.1', reason: `acl: recipient rate over ${rate.max}` });
      }
    }
    const destination = await this.destination(rcpt);
    const trusted = await this.trusted(session, state);
    const denied = (why: string): Verdict =>
      reject(`<${rcpt.text}>: Relay access denied`, { code: 554, enhanced: '5.7.1', reason: `acl: relay denied (${why})` });

    // Relay tricks first, before any rule: `user%other@local`, `"user@other"@local`, `other!user@local`.
    if (!trusted && (destination === 'local' || destination === 'relay') && ROUTING_CHARACTERS.test(rcpt.address.local)) {
      return denied('routing characters in the local part');
    }

    // RFC 5321 §4.5.1: postmaster of our domains must be reachable; rcpt rules do not refuse it.
    const postmaster = rcpt.postmaster && destination === 'local';
    const recipient = toMatchAddress(rcpt.address) as MatchAddress;
    const outcome = await this.match('rcpt', session, state, { sender: toMatchAddress(tx.sender), recipient }, call, postmaster);
    if (outcome && !('rule' in outcome)) return outcome;
    if (outcome?.rule.action === 'accept') {
      // An accept rule skips the remaining checks, relay control included.
      if (destination !== 'local') rcpt.data.relayAllowed = true;
      return undefined;
    }
    if (outcome) return this.ruleVerdict(outcome.rule);

    switch (destination) {
      case 'local':
        return undefined;
      case 'relay':
        rcpt.data.relayAllowed = true;
        return undefined;
      case 'literal':
        if (trusted && this.options.relayToAddressLiterals) {
          rcpt.data.relayAllowed = true;
          return undefined;
        }
        return denied(trusted ? 'address literal (relayToAddressLiterals is off)' : 'address literal');
      case 'remote':
        if (trusted) {
          rcpt.data.relayAllowed = true;
          return undefined;
        }
        return denied('client neither authenticated nor in relayFrom');
    }
  }

  async auth(session: Session, username: string, password: string, authzid: string | undefined): Promise<Verdict | undefined> {
    const state = this.state(session);
    const limits = this.options.limits;
    const exempt = await this.isExempt(state);
    const ip = this.clientKey(session);
    const failKey = `${KEY}authfail:${ip}`;
    const window = limits.authFailures.window;
    const max = limits.authFailures.max;
    const fail = (why: string, locked: boolean): Verdict => {
      state.authFailures++;
      this.log.info('authentication failed', { session: session.id, client: session.remoteAddress, user: username, why });
      if (state.authFailures >= limits.authFailuresPerSession) {
        return disconnect('Too many failed authentication attempts, closing connection', { enhanced: '4.7.0', reason: `acl: ${why}; too many failures in this session` });
      }
      if (locked) {
        return tempfail('Too many failed authentication attempts, try again later', { code: 454, enhanced: '4.7.0', reason: `acl: ${why}` });
      }
      return reject('Authentication credentials invalid', { code: 535, enhanced: '5.7.8', reason: `acl: ${why}` });
    };
    const lockedOut = `${ip} over ${max} failed logins`;
    if (!exempt) {
      // Locked out: the password is not even checked, so guessing goes on learning nothing.
      if ((await this.store.get(failKey)) >= max) return fail(lockedOut, true);
      // Reserve the failure before the (slow, by design) password check, so that parallel
      // sessions cannot all pass the check above while the hashes run: at most `max`
      // checks are in flight or failed per window. A failure keeps its reservation; a
      // success, an attempt refused here, or an internal error gives it back.
      if ((await this.store.increment(failKey, window)) > max) {
        await this.store.increment(failKey, window, -1);
        return fail(`${ip} has ${max} logins failed or being checked`, true);
      }
    }
    let user: UserEntry | undefined;
    try {
      user = await this.users!.verify(username, password);
    } catch (error) {
      if (!exempt) await this.store.increment(failKey, window, -1);
      throw error;
    }
    if (!user) return fail('bad user name or password', false);
    // AUTH PLAIN may ask to act as someone else (authzid); nobody may here.
    if (authzid !== undefined && authzid !== '' && canonicalUser(authzid) !== canonicalUser(user.name)) {
      return fail(`authorization identity ${authzid} differs from ${username}`, false);
    }
    // A successful login does not count against its own address.
    if (!exempt) await this.store.increment(failKey, window, -1);
    return accept(undefined, { reason: `acl: user ${user.name}` });
  }

  async disconnect(session: Session): Promise<void> {
    // The state stays (marked) rather than being deleted: a connect tap still running for
    // this session must see that it is gone. The WeakMap lets it go with the session.
    const state = this.sessions.get(session);
    if (!state) {
      const gone = newState(session);
      gone.disconnected = true;
      this.sessions.set(session, gone);
      return;
    }
    state.disconnected = true;
    const slot = state.slot;
    state.slot = undefined;
    if (slot) await this.store.release(slot);
  }

  async close(): Promise<void> {
    if (this.ownStore) await this.store.close?.();
  }

  // --- helpers -------------------------------------------------------------------------

  private state(session: Session): SessionState {
    let state = this.sessions.get(session);
    if (!state) {
      // The connect tap did not run (an earlier plugin decided): start the state now.
      state = newState(session);
      this.sessions.set(session, state);
    }
    return state;
  }

  private errorLimit(session: Session): Verdict | undefined {
    const max = this.options.limits.maxErrors;
    if (max === undefined || session.errorCount < max) return undefined;
    return disconnect('Too many errors, closing connection', { enhanced: '4.7.0', reason: `acl: ${session.errorCount} errors in this session` });
  }

  private async isExempt(state: SessionState): Promise<boolean> {
    const exempt = await this.exempt.get();
    return exempt.size > 0 && exempt.has(state.ip);
  }

  private async trusted(session: Session, state: SessionState): Promise<boolean> {
    return session.user !== undefined || (await this.relayFrom.get()).has(state.ip);
  }

  /** The client a per-IP limit counts: its IPv4 address, or its IPv6 network (limits.ipv6PrefixLength), as the core counts it. */
  private clientKey(session: Session): string {
    return clientKey(session.remoteAddress, this.options.limits.ipv6PrefixLength ?? this.gateway.config.limits.ipv6PrefixLength);
  }

  /**
   * Who messageRate and recipientRate count against: the authenticated user, else the
   * client (its IPv4 address or IPv6 network). Never the envelope sender of a client that
   * anyone could be: MAIL FROM is not authenticated, so a sender-keyed count would let
   * anyone burn a victim's allowance by forging its address (the same reason Postfix's
   * anvil counts per client). Only with `rateBy: sender`, and only for `relayFrom`
   * clients (programs you trust), is the envelope sender counted instead.
   */
  private async rateKey(session: Session, state: SessionState, tx: Transaction): Promise<string> {
    if (session.user !== undefined) return `user:${canonicalUser(session.user)}`;
    if (this.options.limits.rateBy === 'sender' && tx.sender && (await this.relayFrom.get()).has(state.ip)) {
      return `from:${asciiLower(tx.sender.local)}@${canonicalDomain(tx.sender.domain)}`;
    }
    return `client:${this.clientKey(session)}`;
  }

  private async destination(rcpt: Recipient): Promise<Destination> {
    const address = rcpt.address;
    if (address.domain === '') return 'local'; // RCPT TO:<postmaster>
    if (address.literal) {
      const inside = address.domain.slice(1, -1);
      const ip = parseIp(/^ipv6:/i.test(inside) ? inside.slice(5) : inside);
      return (await this.literals.get()).has(ip) ? 'local' : 'literal';
    }
    const domain = canonicalDomain(address.domain);
    if ((await this.localDomains.get()).has(domain)) return 'local';
    if ((await this.relayDomains.get())(domain)) return 'relay';
    return 'remote';
  }

  private rdns(state: SessionState, session: Session, call: TapContext | undefined): Promise<RdnsResult> {
    if (state.rdnsResult) return Promise.resolve(state.rdnsResult);
    state.rdns ??= forwardConfirmedNames(this.gateway.dns, session.remoteAddress)
      .catch((): RdnsResult => ({ names: [], temporary: true }))
      .then((result) => (state.rdnsResult = result));
    // The lookup serves every stage of the session: a tap that timed out, or whose client
    // left, stops waiting for it (and the session can end), but the lookup goes on. The
    // signal is read only here, where a lookup is pending (reading it has a cost).
    return call ? untilAborted(state.rdns, call.signal) : state.rdns;
  }

  private subject(
    session: Session,
    state: SessionState,
    fields: Partial<Pick<RuleSubject, 'helo' | 'sender' | 'recipient'>>,
    call: TapContext | undefined,
  ): RuleSubject {
    return {
      ip: state.ip,
      tls: session.tls !== undefined,
      helo: fields.helo ?? (session.heloName === undefined ? undefined : canonicalHost(session.heloName)),
      sender: fields.sender,
      recipient: fields.recipient,
      user: session.user === undefined ? undefined : canonicalUser(session.user),
      trusted: () => this.trusted(session, state),
      rdns: () => this.rdns(state, session, call),
    };
  }

  private async match(
    stage: AclStage,
    session: Session,
    state: SessionState,
    fields: Partial<Pick<RuleSubject, 'helo' | 'sender' | 'recipient'>>,
    call: TapContext | undefined,
    exemptFromRefusals = false,
  ): Promise<Verdict | { rule: CompiledRule } | undefined> {
    const outcome = await firstMatch(this.rules.get(stage), this.subject(session, state, fields, call), {
      rdnsTempfail: this.options.rdnsFailure === 'tempfail',
      ...(exemptFromRefusals ? { skip: (rule: CompiledRule) => rule.action !== 'accept' } : {}),
    });
    if (!outcome) return undefined;
    if (outcome.kind === 'dns-tempfail') {
      return tempfail('Cannot verify your host name (DNS), try again later', { enhanced: '4.7.25', reason: `acl: rule ${outcome.rule.label}: reverse DNS lookup failed` });
    }
    if (this.log.enabled('debug')) this.log.debug('ACL rule matched', { session: session.id, stage, rule: outcome.rule.label, action: outcome.rule.action });
    return { rule: outcome.rule };
  }

  private async applyRules(
    stage: AclStage,
    session: Session,
    state: SessionState,
    fields: Partial<Pick<RuleSubject, 'helo' | 'sender' | 'recipient'>>,
    call: TapContext | undefined,
  ): Promise<Verdict | undefined> {
    const outcome = await this.match(stage, session, state, fields, call);
    if (!outcome) return undefined;
    if (!('rule' in outcome)) return outcome;
    // accept: skip the remaining ACL rules of this stage, without answering for the core.
    if (outcome.rule.action === 'accept') return undefined;
    return this.ruleVerdict(outcome.rule);
  }

  private ruleVerdict(rule: CompiledRule): Verdict {
    const options = {
      ...(rule.code === undefined ? {} : { code: rule.code }),
      ...(rule.enhanced === undefined ? {} : { enhanced: rule.enhanced }),
      reason: `acl rule ${rule.label}`,
    };
    return rule.action === 'reject' ? reject(rule.message, options) : tempfail(rule.message, options);
  }
}

