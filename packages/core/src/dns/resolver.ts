/**
 * The DNS stub resolver shared by every plugin: it asks recursive servers (resolv.conf
 * or configured) and never recurses itself.
 *
 * Results:
 * - records of the asked type → a non-empty array (MX sorted by priority);
 * - NODATA (name exists, no record of that type) → an empty array, never an error;
 * - NXDOMAIN → `DnsError` code 'NXDOMAIN', `temporary: false`;
 * - anything that may go away (SERVFAIL, REFUSED, TIMEOUT, …) → `DnsError` with
 *   `temporary: true`.
 * So MX resolution (RFC 5321 §5) reads: `[]` → implicit MX on A/AAAA; NXDOMAIN →
 * bounce; temporary → defer.
 */
import {
  interpret,
  isQueryType,
  MAX_CNAME_HOPS,
  type DnsRecordMap,
  type DnsRecordType,
  type MxRecord,
  type WireResult,
} from './answer.js';
import { TtlCache } from './cache.js';
import { estimateBytes } from './cache-size.js';
import { DnsError } from './errors.js';
import { normalizeName, reverseName } from './names.js';
import { parseServer, systemServers, type NameServer } from './servers.js';
import { queryServers, type Question } from './transport.js';

export interface DnsResolverOptions {
  /** "ip", "ip:port" or "[v6]:port"; default: nameservers of /etc/resolv.conf, else 127.0.0.1 */
  servers?: string[];
  /** milliseconds per attempt (one server, one transport); default 2000 */
  timeout?: number;
  /** passes over the server list (at least 1); default 2 */
  retries?: number;
  /**
   * positive and negative cache; default on, at most 10 000 entries and 32 MiB (an
   * estimate of the memory held), answers over 32 KiB not cached (see DEFAULT_* below)
   */
  cache?: boolean | { maxEntries?: number; maxBytes?: number; maxEntryBytes?: number };
  /** clock for cache expiry, ms since epoch; default Date.now (tests inject their own) */
  now?: () => number;
}

const DEFAULT_MAX_ENTRIES = 10_000;
/**
 * Sender domains, and so the zones answering, are chosen by whoever connects: without a
 * byte budget 10 000 large TXT answers held the gateway near a gigabyte. Ordinary answers
 * estimate at 0.3-2 KB, so 10 000 of them fit in 32 MiB several times over and the budget
 * only bites when answers are unusually large.
 */
const DEFAULT_MAX_BYTES = 32 * 1024 ** 2;
/**
 * About 14 000 characters of record data. Real answers are far smaller: an SPF record is
 * under 4 KB (RFC 7208 §3.4 asks for one that fits 512 octets), a domain's whole TXT set
 * a few KB, MX and address sets tiny. A DNS message can carry up to 64 KB; such an answer
 * is asked for again each time rather than pushing a thousand ordinary entries out.
 */
const DEFAULT_MAX_ENTRY_BYTES = 32 * 1024;

export class DnsResolver {
  readonly servers: readonly NameServer[];
  private readonly timeout: number;
  private readonly rounds: number;
  private readonly now: () => number;
  private readonly cache: TtlCache<WireResult> | undefined;
  /** one promise per question on the wire, shared by concurrent callers */
  private readonly inflight = new Map<string, Promise<WireResult>>();

  constructor(options: DnsResolverOptions = {}) {
    this.servers = options.servers?.length ? options.servers.map(parseServer) : systemServers();
    this.timeout = positive(options.timeout, 2000, 'timeout');
    this.rounds = Math.max(1, Math.floor(positive(options.retries, 2, 'retries', true)));
    this.now = options.now ?? Date.now;
    const cache = options.cache ?? true;
    if (cache !== false) {
      const limits = cache === true ? {} : cache;
      this.cache = new TtlCache<WireResult>({
        maxEntries: limits.maxEntries ?? DEFAULT_MAX_ENTRIES,
        maxBytes: limits.maxBytes ?? DEFAULT_MAX_BYTES,
        maxEntryBytes: limits.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES,
        sizeOf: estimateBytes,
      });
    }
  }

  /**
   * Records of `type` for `name`, following CNAMEs (except when asking for CNAME itself).
   * Resolves `[]` for NODATA; rejects with `DnsError` otherwise (see the module comment).
   */
  async resolve<T extends DnsRecordType>(name: string, type: T): Promise<DnsRecordMap[T][]> {
    if (!isQueryType(type)) throw new TypeError(`unsupported DNS record type: ${String(type)}`);
    const qname = normalizeName(name);
    const seen = new Set([qname]);
    let current = qname;
    let hops = 0;
    for (;;) {
      let result: WireResult;
      try {
        result = await this.lookup({ name: current, type });
      } catch (err) {
        // report failures while chasing a CNAME against the name the caller asked for
        if (!(err instanceof DnsError) || err.hostname === qname) throw err;
        throw new DnsError(err.code, `${qname} (via CNAME ${current}): ${err.message}`, { hostname: qname, cause: err.cause });
      }
      for (const target of result.chain) {
        if (seen.has(target) || ++hops > MAX_CNAME_HOPS) {
          const why = seen.has(target) ? 'loop' : `longer than ${MAX_CNAME_HOPS}`;
          throw new DnsError('CNAMELOOP', `CNAME chain for ${qname} ${type} is a ${why} (at ${target})`, { hostname: qname });
        }
        seen.add(target);
      }
      switch (result.kind) {
        case 'data': {
          // copies: the cached records must not change under later callers
          const records = structuredClone(result.records) as DnsRecordMap[T][];
          if (type === 'MX') (records as MxRecord[]).sort((a, b) => a.priority - b.priority);
          return records;
        }
        case 'nodata':
          return [];
        case 'nxdomain': {
          const last = result.chain.at(-1) ?? current;
          const via = last === qname ? '' : ` (CNAME target ${last})`;
          throw new DnsError('NXDOMAIN', `${qname}${via}: no such domain`, { hostname: qname });
        }
        case 'cname':
          current = result.chain.at(-1)!;
      }
    }
  }

  /** IPv4 addresses. */
  resolve4(name: string): Promise<string[]> {
    return this.resolve(name, 'A');
  }

  /** IPv6 addresses. */
  resolve6(name: string): Promise<string[]> {
    return this.resolve(name, 'AAAA');
  }

  /**
   * MX records, lowest priority first (ties keep server order; RFC 5321 §5.1 wants the
   * relay to randomize among equals). A null MX (RFC 7505) is `[{ exchange: '.', priority: 0 }]`.
   */
  resolveMx(name: string): Promise<MxRecord[]> {
    return this.resolve(name, 'MX');
  }

  /** TXT records, each as its list of character-strings (like node:dns). */
  resolveTxt(name: string): Promise<string[][]> {
    return this.resolve(name, 'TXT');
  }

  /** PTR targets of a name (usually an in-addr.arpa / ip6.arpa name). */
  resolvePtr(name: string): Promise<string[]> {
    return this.resolve(name, 'PTR');
  }

  /** CNAME target(s) of a name, without following them. */
  resolveCname(name: string): Promise<string[]> {
    return this.resolve(name, 'CNAME');
  }

  /** Host names of an IPv4 or IPv6 address (PTR on its in-addr.arpa / ip6.arpa name). */
  async reverse(ip: string): Promise<string[]> {
    return this.resolvePtr(reverseName(ip));
  }

  /** What the cache holds: entries, and the estimated bytes the byte budget counts. */
  cacheUsage(): { entries: number; bytes: number } {
    return { entries: this.cache?.size ?? 0, bytes: this.cache?.bytes ?? 0 };
  }

  /** Forget every cached answer. */
  clearCache(): void {
    this.cache?.clear();
  }

  /** One question on the wire, through the cache and the in-flight table. */
  private lookup(q: Question): Promise<WireResult> {
    const key = `${q.type} ${q.name}`;
    const cached = this.cache?.get(key, this.now());
    if (cached) return Promise.resolve(cached);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.fetch(q, key);
    this.inflight.set(key, p);
    // both handlers: this side chain must never become an unhandled rejection
    const done = (): void => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    };
    p.then(done, done);
    return p;
  }

  private async fetch(q: Question, key: string): Promise<WireResult> {
    const res = await queryServers(q, { servers: this.servers, timeoutMs: this.timeout, rounds: this.rounds });
    const result = interpret(q, res);
    // Errors (SERVFAIL, timeouts, CNAME loops) are thrown above and never cached: the
    // next caller asks again. A TTL of 0 (e.g. a negative answer without SOA) is not cached.
    this.cache?.set(key, result, result.ttl, this.now());
    return result;
  }
}

function positive(value: number | undefined, fallback: number, what: string, allowZero = false): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`DnsResolver: ${what} must be a positive number, got ${value}`);
  }
  return value;
}
