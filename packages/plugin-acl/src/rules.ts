/**
 * Compiled rules: each condition a (possibly file-backed) list, evaluated cheapest
 * first; within a stage the first rule whose conditions all hold decides.
 */
import type { IpAddress, Logger } from '@mailgate/core';
import { DynamicList, type ListKind } from './lists.js';
import type { AclRule, AclStage } from './options.js';
import type { MatchAddress } from './patterns.js';
import type { RdnsResult } from './rdns.js';

export interface CompiledRule {
  /** 1-based position in `rules`, for logs. */
  index: number;
  label: string;
  stage: AclStage;
  action: AclRule['action'];
  code: number | undefined;
  enhanced: string | undefined;
  message: string | undefined;
  client?: DynamicList<'ip'>;
  rdns?: DynamicList<'host'>;
  helo?: DynamicList<'host'>;
  sender?: DynamicList<'address'>;
  recipient?: DynamicList<'address'>;
  user?: DynamicList<'user'>;
  fcrdns?: boolean;
  authenticated?: boolean;
  trusted?: boolean;
  tls?: boolean;
}

/** What a rule is evaluated against. Fields a stage does not know yet are undefined. */
export interface RuleSubject {
  ip: IpAddress | undefined;
  tls: boolean;
  /** Canonical HELO name. */
  helo: string | undefined;
  /** `null` = the null sender; undefined before MAIL. */
  sender: MatchAddress | null | undefined;
  recipient: MatchAddress | undefined;
  /** Canonical user name when authenticated. */
  user: string | undefined;
  trusted(): Promise<boolean>;
  rdns(): Promise<RdnsResult>;
}

export type RuleOutcome = { kind: 'match'; rule: CompiledRule } | { kind: 'dns-tempfail'; rule: CompiledRule };

export async function compileRules(
  rules: readonly AclRule[],
  options: { configDir: string; reloadInterval: number; log: Logger; now?: () => number },
): Promise<Map<AclStage, CompiledRule[]>> {
  const byStage = new Map<AclStage, CompiledRule[]>();
  for (const [i, rule] of rules.entries()) {
    const index = i + 1;
    const make = async <K extends ListKind>(kind: K, key: string, entries: AclRule['client']): Promise<DynamicList<K> | undefined> =>
      entries === undefined
        ? undefined
        : DynamicList.create(kind, entries, { ...options, where: `rules[${i}].${key}` });
    const compiled: CompiledRule = {
      index,
      label: rule.name ? `#${index} "${rule.name}"` : `#${index}`,
      stage: rule.stage,
      action: rule.action,
      code: rule.code,
      enhanced: rule.enhanced,
      message: rule.message,
    };
    const client = await make('ip', 'client', rule.client);
    const rdns = await make('host', 'rdns', rule.rdns);
    const helo = await make('host', 'helo', rule.helo);
    const sender = await make('address', 'sender', rule.sender);
    const recipient = await make('address', 'recipient', rule.recipient);
    const user = await make('user', 'user', rule.user);
    if (client) compiled.client = client;
    if (rdns) compiled.rdns = rdns;
    if (helo) compiled.helo = helo;
    if (sender) compiled.sender = sender;
    if (recipient) compiled.recipient = recipient;
    if (user) compiled.user = user;
    if (rule.fcrdns !== undefined) compiled.fcrdns = rule.fcrdns;
    if (rule.authenticated !== undefined) compiled.authenticated = rule.authenticated;
    if (rule.trusted !== undefined) compiled.trusted = rule.trusted;
    if (rule.tls !== undefined) compiled.tls = rule.tls;
    let list = byStage.get(rule.stage);
    if (!list) byStage.set(rule.stage, (list = []));
    list.push(compiled);
  }
  return byStage;
}

/**
 * The first rule of `rules` that matches. With `rdnsTempfail`, a rule that needs the
 * client's name while DNS fails temporarily yields 'dns-tempfail' instead of being skipped.
 * `skip` leaves out rules the caller does not want (reject rules for postmaster).
 */
export async function firstMatch(
  rules: readonly CompiledRule[] | undefined,
  subject: RuleSubject,
  options: { rdnsTempfail: boolean; skip?: (rule: CompiledRule) => boolean },
): Promise<RuleOutcome | undefined> {
  if (!rules) return undefined;
  for (const rule of rules) {
    if (options.skip?.(rule)) continue;
    const result = await matches(rule, subject);
    if (result === true) return { kind: 'match', rule };
    if (result === 'dns-temporary' && options.rdnsTempfail) return { kind: 'dns-tempfail', rule };
  }
  return undefined;
}

async function matches(rule: CompiledRule, s: RuleSubject): Promise<boolean | 'dns-temporary'> {
  // Cheap, synchronous conditions first.
  if (rule.tls !== undefined && rule.tls !== s.tls) return false;
  if (rule.authenticated !== undefined && rule.authenticated !== (s.user !== undefined)) return false;
  if (rule.client && !(await rule.client.get()).has(s.ip)) return false;
  if (rule.helo && (s.helo === undefined || !(await rule.helo.get())(s.helo))) return false;
  if (rule.sender && (s.sender === undefined || !(await rule.sender.get())(s.sender))) return false;
  if (rule.recipient && (s.recipient === undefined || !(await rule.recipient.get())(s.recipient))) return false;
  if (rule.user && (s.user === undefined || !(await rule.user.get())(s.user))) return false;
  if (rule.trusted !== undefined && rule.trusted !== (await s.trusted())) return false;
  // DNS last: only for rules that got this far.
  if (rule.rdns || rule.fcrdns !== undefined) {
    const rdns = await s.rdns();
    if (rdns.temporary) return 'dns-temporary';
    if (rule.fcrdns !== undefined && rule.fcrdns !== rdns.names.length > 0) return false;
    if (rule.rdns) {
      const pattern = await rule.rdns.get();
      if (!rdns.names.some((n) => pattern(n))) return false;
    }
  }
  return true;
}
