/**
 * The DNS side of one SPF check: every query goes through here, so the limits of RFC 7208
 * §4.6.4 (10 terms that cause lookups, 2 void lookups) and the caller's abort signal are
 * enforced in one place, and a hard cap on queries bounds the work whatever the zones say.
 */
import { untilAborted, type DnsRecordMap } from '@mailgate/core';
import { permerror, temperror } from './errors.js';
import type { SpfDns } from './types.js';

type SpfQueryType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR';

/**
 * The most queries one check may send. Within the RFC limits a check needs at most about
 * 10 × (1 MX + 10 addresses) + the PTR validation + the explanation; anything past this
 * is a bug or a zone built to make us work, and ends as permerror.
 */
export const MAX_QUERIES_PER_CHECK = 250;

export interface LookupLimits {
  maxLookups: number;
  maxVoidLookups: number;
}

export class SpfLookups {
  private terms = 0;
  private voids = 0;
  private queries = 0;

  constructor(
    private readonly dns: SpfDns,
    private readonly limits: LookupLimits,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** A term that causes DNS lookups is about to be evaluated (§4.6.4). */
  countTerm(term: string): void {
    if (++this.terms > this.limits.maxLookups) {
      throw permerror(`more than ${this.limits.maxLookups} DNS-querying terms (at ${JSON.stringify(term)})`);
    }
  }

  /** A term's lookup found no records (NODATA or NXDOMAIN) (§4.6.4). */
  countVoid(term: string): void {
    if (++this.voids > this.limits.maxVoidLookups) {
      throw permerror(`more than ${this.limits.maxVoidLookups} void lookups (at ${JSON.stringify(term)})`);
    }
  }

  /**
   * Records of `type` at `name`. NODATA, NXDOMAIN and a name that cannot exist (the
   * resolver's BADNAME) are all "no records": `[]`. A failure that may go away is a
   * temperror; an abort rejects with the signal's reason.
   */
  async query<T extends SpfQueryType>(name: string, type: T): Promise<DnsRecordMap[T][]> {
    this.signal?.throwIfAborted();
    if (name === '') return [];
    if (++this.queries > MAX_QUERIES_PER_CHECK) throw permerror(`more than ${MAX_QUERIES_PER_CHECK} DNS queries`);
    try {
      return await untilAborted(this.dns.resolve(name, type), this.signal);
    } catch (err) {
      if (this.signal?.aborted) throw this.signal.reason;
      const temporary = (err as { temporary?: unknown } | undefined)?.temporary;
      if (temporary === false) return [];
      const code = (err as { code?: unknown } | undefined)?.code;
      throw temperror(`DNS ${type} lookup of ${name} failed${typeof code === 'string' ? ` (${code})` : ''}`);
    }
  }
}

