/**
 * DNS lists (RFC 5782): IP blocklists and allowlists for the client address, domain
 * blocklists (RHSBL) for the sender, HELO and From domains, URI blocklists for the
 * domains of the message's URLs.
 *
 * A list lookup never fails the message: NXDOMAIN and NODATA are "not listed"; DNS
 * failures, timeouts, error return codes and answers outside 127/8 are "not listed" too,
 * and come back as `problems` so the plugin can log a warning (a list that answers
 * 127.255.255.254 for every query is a misconfigured resolver, not clean mail).
 * Every query of one call runs in parallel; an AbortSignal (e.g. `AbortSignal.timeout()`
 * as a per-message DNS budget) ends the wait: answers in by then count, the rest are
 * reported as `aborted`. These functions never reject.
 */
import { normalizeName, untilAborted, type DnsResolver } from '@mailgate/core';
import { classifyAnswers, type AnswerFilter } from './dnslists-answers.js';
import { headerText } from './header-text.js';
import type { DomainCheck, DomainList, IpList } from './dnslists-config.js';
import { DOMAIN_CHECKS } from './dnslists-config.js';
import { domainTargets, ipQueryPrefix, type DomainTarget } from './dnslists-targets.js';

export {
  ipListSchema,
  domainListSchema,
  parseReturnCode,
  DOMAIN_CHECKS,
  type IpList,
  type DomainList,
  type IpListConfig,
  type DomainListConfig,
  type DomainCheck,
} from './dnslists-config.js';
export {
  domainTargets,
  registeredDomain,
  urlHost,
  ipQueryPrefix,
  DEFAULT_MAX_DOMAINS,
  type DomainTarget,
  type MessageDomains,
  type DomainTargetOptions,
} from './dnslists-targets.js';

/** What the lookups need of the core's resolver (a DnsResolver fits). */
export type DnsListResolver = Pick<DnsResolver, 'resolve'>;

export interface DnsListHit {
  /** The list's name (default: its zone). */
  list: string;
  zone: string;
  /** The name that was asked, e.g. `2.0.0.127.zen.spamhaus.org`. */
  query: string;
  /** What is listed: the IP address, or the domain. */
  listed: string;
  /** The A answers that made it a listing. */
  answers: string[];
  weight: number;
  /** Domain lists only: where the message names the domain (among the list's `check`). */
  checks?: DomainCheck[];
}

export type DnsListProblemKind =
  /** 127.255.255.x or a "refused" code: the list will not answer us (blocked resolver, typo in the zone, over quota). */
  | 'list-error'
  /** An answer outside 127.0.0.0/8: a wildcarding or hijacked resolver. */
  | 'unexpected-answer'
  /** A temporary DNS failure (SERVFAIL, REFUSED, network error) or a name the resolver refused. */
  | 'dns-error'
  /** No answer within the resolver's timeout and retries. */
  | 'timeout'
  /** The caller's AbortSignal fired before the answer came. */
  | 'aborted';

export interface DnsListProblem {
  kind: DnsListProblemKind;
  list: string;
  zone: string;
  query: string;
  listed: string;
  /** One line for the log. */
  message: string;
  /** The answers behind a list-error or unexpected-answer. */
  answers?: string[];
}

export interface DnsListResult {
  hits: DnsListHit[];
  problems: DnsListProblem[];
}

interface Lookup {
  list: IpList | DomainList;
  query: string;
  listed: string;
  checks?: DomainCheck[];
}

type Outcome = { hit: DnsListHit } | { problem: DnsListProblem } | undefined;

const ABORTED = Symbol('aborted');

/** `promise`, or ABORTED as soon as `signal` fires (a lookup given up is a problem, not an error). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | typeof ABORTED> {
  return untilAborted(promise, signal).catch((error: unknown) => {
    if (signal?.aborted && error === signal.reason) return ABORTED;
    throw error;
  });
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

async function lookUp(lookup: Lookup, dns: DnsListResolver, signal: AbortSignal | undefined): Promise<Outcome> {
  const { list, query, listed } = lookup;
  const base = { list: list.name, zone: list.zone, query, listed };
  // an already aborted call sends nothing
  if (signal?.aborted) return { problem: { ...base, kind: 'aborted', message: `${list.name}: lookup of ${query} aborted` } };
  let answers: string[] | typeof ABORTED;
  try {
    answers = await unlessAborted(dns.resolve(query, 'A'), signal);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'NXDOMAIN') return undefined;
    const kind = code === 'TIMEOUT' ? 'timeout' : 'dns-error';
    const why = err instanceof Error ? err.message : String(err);
    return { problem: { ...base, kind, message: `${list.name}: lookup of ${query} failed: ${why}` } };
  }
  if (answers === ABORTED) return { problem: { ...base, kind: 'aborted', message: `${list.name}: lookup of ${query} aborted` } };
  const sorted = classifyAnswers(answers, list satisfies AnswerFilter);
  if (sorted.listed.length > 0) {
    return { hit: { ...base, answers: sorted.listed, weight: list.weight, ...(lookup.checks ? { checks: lookup.checks } : {}) } };
  }
  if (sorted.errors.length > 0) {
    const message = `${list.name}: ${query} answered ${sorted.errors.join(', ')}, an error code (resolver blocked, quota or zone name wrong?)`;
    return { problem: { ...base, kind: 'list-error', message, answers: sorted.errors } };
  }
  if (sorted.unexpected.length > 0) {
    const message = `${list.name}: ${query} answered ${sorted.unexpected.join(', ')}, outside 127.0.0.0/8 (wildcarding or hijacked resolver?)`;
    return { problem: { ...base, kind: 'unexpected-answer', message, answers: sorted.unexpected } };
  }
  return undefined; // NODATA, or only answers the list's filter leaves out
}

/** `<prefix>.<zone>` if DNS can carry it (each part was checked; the sum may still be too long). */
function queryName(prefix: string, zone: string): string | undefined {
  try {
    return normalizeName(`${prefix}.${zone}`);
  } catch {
    return undefined;
  }
}

async function runAll(lookups: Lookup[], dns: DnsListResolver, signal: AbortSignal | undefined): Promise<DnsListResult> {
  const outcomes = await Promise.all(
    lookups.map((l) =>
      // lookUp catches DNS errors; this guards against a resolver that throws something odd
      lookUp(l, dns, signal).catch((err: unknown): Outcome => ({
        problem: {
          kind: 'dns-error',
          list: l.list.name,
          zone: l.list.zone,
          query: l.query,
          listed: l.listed,
          message: `${l.list.name}: lookup of ${l.query} failed: ${String(err)}`,
        },
      })),
    ),
  );
  const result: DnsListResult = { hits: [], problems: [] };
  for (const outcome of outcomes) {
    if (!outcome) continue;
    if ('hit' in outcome) result.hits.push(outcome.hit);
    else result.problems.push(outcome.problem);
  }
  return result;
}

/**
 * Look `ip` up in every IP list (DNSBL/DNSWL) at once. An IPv4-mapped IPv6 address is
 * looked up as IPv4; something that is not an IP address gives an empty result.
 */
export async function queryIpLists(
  ip: string,
  lists: readonly IpList[],
  dns: DnsListResolver,
  signal?: AbortSignal,
): Promise<DnsListResult> {
  const prefix = ipQueryPrefix(ip);
  if (prefix === undefined) return { hits: [], problems: [] };
  const listed = ip.trim();
  const lookups: Lookup[] = [];
  for (const list of lists) {
    const query = queryName(prefix, list.zone);
    if (query) lookups.push({ list, query, listed });
  }
  return runAll(lookups, dns, signal);
}

/**
 * Plain names given to queryDomainLists: host names, addresses or URLs, reduced as
 * URL hosts are, each as if named everywhere (the caller chose the lists).
 */
function targetsOfNames(names: readonly string[]): DomainTarget[] {
  return domainTargets({ urls: names }).map((t) => ({ ...t, checks: [...DOMAIN_CHECKS] }));
}

/**
 * Look every target up in the domain lists whose `check` covers where the message names
 * it, all at once. Targets come from `domainTargets` (which bounds and filters them); a
 * plain string is a host name, address or URL, reduced to its registered domain (at most
 * DEFAULT_MAX_DOMAINS of them) and looked up in every given list.
 */
export async function queryDomainLists(
  domains: ReadonlyArray<DomainTarget | string>,
  lists: readonly DomainList[],
  dns: DnsListResolver,
  signal?: AbortSignal,
): Promise<DnsListResult> {
  const names = domains.filter((d): d is string => typeof d === 'string');
  const targets = [...domains.filter((d): d is DomainTarget => typeof d !== 'string'), ...targetsOfNames(names)];
  const seen = new Set<string>();
  const lookups: Lookup[] = [];
  for (const target of targets) {
    if (seen.has(target.listed)) continue; // a name given twice is asked once
    seen.add(target.listed);
    for (const list of lists) {
      const checks = target.checks.filter((c) => list.check.includes(c));
      if (checks.length === 0) continue;
      const query = queryName(target.prefix, list.zone);
      if (query) lookups.push({ list, query, listed: target.listed, checks });
    }
  }
  return runAll(lookups, dns, signal);
}

/**
 * The list's TXT record for a hit (usually a URL explaining the listing), for a reject
 * message: one line of printable ASCII, at most 300 characters; undefined when there is
 * none or the lookup fails. Only call it when the text will be used: it is one more query.
 */
export async function listingText(hit: Pick<DnsListHit, 'query'>, dns: DnsListResolver, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const records = await unlessAborted(dns.resolve(hit.query, 'TXT'), signal);
    if (records === ABORTED) return undefined;
    const first = records.find((r) => r.join('').trim().length > 0);
    if (!first) return undefined;
    // the text ends up in an SMTP reply: no CR/LF or other controls, bounded length
    return headerText(first.join(''), 300) || undefined;
  } catch {
    return undefined;
  }
}
