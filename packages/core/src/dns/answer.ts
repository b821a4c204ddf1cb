/**
 * Turning one DNS response into what the resolver needs: the typed records of the asked
 * type, the CNAME chain followed inside the response, and how long the result may be
 * cached (positive: min TTL of the records used; negative: RFC 2308).
 */
import type { Answer } from 'dns-packet';
import { DnsError } from './errors.js';
import { normalizeName, sameName } from './names.js';
import type { DnsResponse, QueryType, Question } from './transport.js';

export interface MxRecord {
  exchange: string;
  priority: number;
}

/** What `resolve(name, type)` yields per record, by type. */
export interface DnsRecordMap {
  A: string;
  AAAA: string;
  MX: MxRecord;
  /** the character-strings of one TXT record; join('') them for SPF/DKIM/DMARC */
  TXT: string[];
  PTR: string;
  CNAME: string;
}

export type DnsRecordType = keyof DnsRecordMap;
export type DnsRecord = DnsRecordMap[DnsRecordType];

export interface WireResult {
  /** data: records found; nodata / nxdomain: negative; cname: chain ends in a name this response has no data for */
  kind: 'data' | 'nodata' | 'nxdomain' | 'cname';
  /** CNAME targets followed inside this response, in order (normalized) */
  chain: string[];
  records: DnsRecord[];
  /** seconds the result may be cached; 0 = do not cache */
  ttl: number;
}

/** Upper bounds on what we keep, whatever the zone says. */
export const MAX_POSITIVE_TTL = 86_400;
/** RFC 2308 §5 suggests 1-3 hours as the maximum for negative answers. */
export const MAX_NEGATIVE_TTL = 10_800;
/** Per-response CNAME limit (the resolver enforces the same limit across re-queries). */
export const MAX_CNAME_HOPS = 8;

function ttlOf(a: Answer): number {
  const ttl = 'ttl' in a && typeof a.ttl === 'number' ? a.ttl : 0;
  // RFC 2181 §8: a TTL with the top bit set is to be treated as zero
  return ttl > 0x7fffffff ? 0 : ttl;
}

function toRecord(a: Answer): DnsRecord | undefined {
  switch (a.type) {
    case 'A':
    case 'AAAA':
    case 'PTR':
    case 'CNAME':
      return a.data;
    case 'MX':
      return { exchange: a.data.exchange, priority: a.data.preference ?? 0 };
    case 'TXT': {
      const chunks = Array.isArray(a.data) ? a.data : [a.data];
      return chunks.map((c) => (typeof c === 'string' ? c : c.toString('utf8')));
    }
    default:
      return undefined;
  }
}

/** RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM); no SOA in authority → not cached. */
function negativeTtl(res: DnsResponse): number {
  let ttl: number | undefined;
  for (const a of res.authorities) {
    if (a.type !== 'SOA') continue;
    const t = Math.min(ttlOf(a), a.data.minimum ?? 0);
    ttl = ttl === undefined ? t : Math.min(ttl, t);
  }
  return Math.min(ttl ?? 0, MAX_NEGATIVE_TTL);
}

function isIn(a: Answer): boolean {
  return !('class' in a) || a.class === undefined || a.class === 'IN';
}

/**
 * A CNAME's target as the name the resolver will ask for next, checked like a caller's
 * name (normalizeName): the root, an empty or over-long label, non-ASCII (raw octets
 * decode to U+FFFD, three octets each when encoded again) cannot be sent as a query, so
 * such a response makes no sense and fails the lookup as BADRESP (temporary).
 */
function cnameTarget(data: string, owner: string, q: Question): string {
  try {
    return normalizeName(data);
  } catch (error) {
    throw new DnsError('BADRESP', `CNAME at ${owner} for ${q.name} ${q.type} points to an invalid name ${JSON.stringify(data)}`, {
      hostname: q.name,
      cause: error,
    });
  }
}

export function interpret(q: Question, res: DnsResponse): WireResult {
  const answers = res.answers.filter(isIn);
  const chain: string[] = [];
  const seen = new Set([q.name]);
  let current = q.name;
  let ttl = Infinity;
  for (;;) {
    const rrset = answers.filter((a) => a.type === q.type && sameName(a.name, current));
    if (rrset.length > 0) {
      const records = rrset.map(toRecord).filter((r): r is DnsRecord => r !== undefined);
      for (const a of rrset) ttl = Math.min(ttl, ttlOf(a));
      return { kind: 'data', chain, records, ttl: Math.min(ttl, MAX_POSITIVE_TTL) };
    }
    if (q.type === 'CNAME') break; // asked for the CNAME itself: nothing to follow
    const cname = answers.find((a) => a.type === 'CNAME' && sameName(a.name, current));
    if (!cname || cname.type !== 'CNAME') break;
    const target = cnameTarget(cname.data, current, q);
    if (seen.has(target) || chain.length >= MAX_CNAME_HOPS) {
      throw new DnsError('CNAMELOOP', `CNAME ${seen.has(target) ? 'loop' : 'chain too long'} at ${current} for ${q.name} ${q.type}`, {
        hostname: q.name,
      });
    }
    seen.add(target);
    chain.push(target);
    ttl = Math.min(ttl, ttlOf(cname));
    current = target;
  }
  // No data at the end of the chain. NXDOMAIN (with or without a chain) is about the
  // last name (RFC 2308 §2.1), which is what the resolver reports.
  if (res.rcode === 3) return { kind: 'nxdomain', chain, records: [], ttl: Math.min(ttl, negativeTtl(res)) };
  // A chain the server did not follow to the end: the resolver asks for the target.
  if (chain.length > 0) return { kind: 'cname', chain, records: [], ttl: Math.min(ttl, MAX_POSITIVE_TTL) };
  return { kind: 'nodata', chain, records: [], ttl: Math.min(ttl, negativeTtl(res)) };
}

export function isQueryType(type: unknown): type is QueryType {
  return type === 'A' || type === 'AAAA' || type === 'MX' || type === 'TXT' || type === 'PTR' || type === 'CNAME';
}
