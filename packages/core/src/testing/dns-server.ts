/**
 * A small authoritative DNS server for tests, on 127.0.0.1 with the same port for UDP
 * and TCP, serving fixed records and misbehaving on request (SERVFAIL, REFUSED, silence,
 * slowness, truncation, forged replies). Plugin authors use it to test DNS-dependent
 * code without touching a real resolver:
 *
 *   const dns = await startTestDnsServer({
 *     'example.test': { MX: [{ exchange: 'mx1.example.test', priority: 10 }], A: ['192.0.2.1'] },
 *     'null.test': { MX: [{ exchange: '.', priority: 0 }] },
 *     'slow.test': { A: ['192.0.2.9'], delayMs: 500 },
 *   });
 *   const resolver = new DnsResolver({ servers: [dns.address] });
 *   …
 *   await dns.close();
 *
 * Names not in the zone get NXDOMAIN; a name in the zone (or with names below it, an
 * "empty non-terminal") asked for a type it lacks gets NODATA. Both carry an SOA in the
 * authority section so negative caching (RFC 2308) can be tested.
 */
import dgram from 'node:dgram';
import { listenDns, type DnsListener } from './dns-listener.js';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

export type TestRecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR' | 'CNAME';

export interface TestZoneEntry {
  A?: string[];
  AAAA?: string[];
  MX?: Array<{ exchange: string; priority: number }>;
  /** one item per TXT record: a string (split in 255-octet chunks when longer) or its explicit chunks */
  TXT?: Array<string | string[]>;
  PTR?: string[];
  /** this name is an alias; the target's records are added to the answer when served here */
  CNAME?: string;
  /** TTL of this name's records (seconds); default: the server's `defaultTtl` */
  ttl?: number;
  /** answer only the CNAME, not its target's records (as for an out-of-zone target), so the client must ask again */
  cnameOnly?: boolean;
  /** answer SERVFAIL */
  servfail?: boolean;
  /** answer REFUSED */
  refused?: boolean;
  /** never answer (UDP and TCP) */
  drop?: boolean;
  /** ignore the first N queries for this name (any type, any transport), answer later ones */
  dropFirst?: number;
  /** answer after this many milliseconds */
  delayMs?: number;
  /** over UDP answer with the TC bit and no records; the full answer is only given over TCP */
  truncate?: boolean;
  /** behave like a pre-EDNS server: answer FORMERR (without OPT) to queries that carry EDNS0 */
  noEdns?: boolean;
  /** answer with the right id but an undecodable body */
  malformed?: boolean;
  /**
   * over UDP, before the real answer (sent 25 ms later), send forged replies that a stub
   * resolver must ignore: wrong id, wrong question name, wrong question type, and the
   * right id and question from another source port. Forged replies carry A 192.0.2.66.
   */
  spoof?: boolean;
}

/** Owner name (case-insensitive, trailing dot optional) → records and behaviour. */
export type TestZone = Record<string, TestZoneEntry>;

export interface TestDnsServerOptions {
  /** TTL of records without their own `ttl`; default 300 */
  defaultTtl?: number;
  /** SOA MINIMUM in negative answers; default 60 */
  negativeTtl?: number;
  /** TTL of the SOA record itself; default `negativeTtl` (negative TTL = min of both) */
  soaTtl?: number;
  /** put an SOA in the authority section of NXDOMAIN/NODATA answers; default true */
  soa?: boolean;
}

export interface TestDnsQuery {
  /** as received (case preserved) */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface TestDnsServer {
  host: string;
  port: number;
  /** "127.0.0.1:port", ready for `new DnsResolver({ servers: [address] })` */
  address: string;
  /** every query received, in order, including the ones not answered */
  queries: TestDnsQuery[];
  /** add, replace (or with `undefined` remove) a name while running */
  set(name: string, entry: TestZoneEntry | undefined): void;
  close(): Promise<void>;
}

const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const REFUSED = 5;
const RA = dnsPacket.RECURSION_AVAILABLE;
const DECOY_ADDRESS = '192.0.2.66';

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function txtChunks(value: string | string[]): Buffer[] {
  if (Array.isArray(value)) return value.map((c) => Buffer.from(c));
  const bytes = Buffer.from(value);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  return chunks.length > 0 ? chunks : [Buffer.alloc(0)];
}

interface Reply {
  packet: Packet;
  entry: TestZoneEntry | undefined;
}

export async function startTestDnsServer(zone: TestZone = {}, options: TestDnsServerOptions = {}): Promise<TestDnsServer> {
  const defaultTtl = options.defaultTtl ?? 300;
  const negativeTtl = options.negativeTtl ?? 60;
  const soaTtl = options.soaTtl ?? negativeTtl;
  const withSoa = options.soa ?? true;

  const records = new Map<string, TestZoneEntry>();
  for (const [name, entry] of Object.entries(zone)) records.set(norm(name), entry);
  const seenCount = new Map<string, number>();
  const queries: TestDnsQuery[] = [];
  const timers = new Set<NodeJS.Timeout>();

  /** a name exists if it has an entry or some name below it does (empty non-terminal) */
  const exists = (name: string): boolean => {
    if (records.has(name)) return true;
    for (const key of records.keys()) if (key.endsWith(`.${name}`)) return true;
    return false;
  };

  const rrsOf = (owner: string, entry: TestZoneEntry, type: string): Answer[] => {
    const ttl = entry.ttl ?? defaultTtl;
    switch (type) {
      case 'A':
        return (entry.A ?? []).map((data) => ({ name: owner, type: 'A', ttl, data }));
      case 'AAAA':
        return (entry.AAAA ?? []).map((data) => ({ name: owner, type: 'AAAA', ttl, data }));
      case 'PTR':
        return (entry.PTR ?? []).map((data) => ({ name: owner, type: 'PTR', ttl, data }));
      case 'MX':
        return (entry.MX ?? []).map((mx) => ({
          name: owner,
          type: 'MX',
          ttl,
          data: { exchange: mx.exchange, preference: mx.priority },
        }));
      case 'TXT':
        return (entry.TXT ?? []).map((t) => ({ name: owner, type: 'TXT', ttl, data: txtChunks(t) }));
      case 'CNAME':
        return entry.CNAME === undefined ? [] : [{ name: owner, type: 'CNAME', ttl, data: entry.CNAME }];
      default:
        return [];
    }
  };

  const soaFor = (name: string): Answer[] => {
    if (!withSoa) return [];
    const apex = name.split('.').at(-1) ?? name; // the TLD of the test names; good enough for tests
    return [
      {
        name: apex,
        type: 'SOA',
        ttl: soaTtl,
        data: {
          mname: 'ns.dns-test.invalid',
          rname: 'hostmaster.dns-test.invalid',
          serial: 1,
          refresh: 3600,
          retry: 600,
          expire: 86400,
          minimum: negativeTtl,
        },
      },
    ];
  };

  /** the answer an authoritative-and-recursive server would give */
  const answer = (query: DecodedPacket, q: Question): Reply => {
    const qname = norm(q.name);
    const entry = records.get(qname);
    const header = {
      type: 'response' as const,
      id: query.id ?? 0,
      questions: [q],
      additionals: (query.additionals ?? []).some((a) => a.type === 'OPT')
        ? [{ type: 'OPT' as const, name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
        : [],
    };
    const flags = (rcode: number): number =>
      dnsPacket.AUTHORITATIVE_ANSWER | RA | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode;
    if (entry?.servfail) return { entry, packet: { ...header, flags: flags(SERVFAIL) } };
    if (entry?.refused) return { entry, packet: { ...header, flags: flags(REFUSED) } };

    // follow CNAMEs inside the zone (as a recursive server would), loop-safe
    const answers: Answer[] = [];
    let current = qname;
    let owner = q.name; // the first owner echoes the question's case
    const visited = new Set<string>();
    let stopped = false; // chain deliberately not followed to its end (cnameOnly, loop)
    for (;;) {
      const e = records.get(current);
      if (e && q.type !== 'CNAME' && e.CNAME !== undefined) {
        if (visited.has(current) || visited.size >= 16) {
          stopped = true;
          break;
        }
        visited.add(current);
        answers.push(...rrsOf(owner, e, 'CNAME'));
        current = norm(e.CNAME);
        owner = current;
        if (e.cnameOnly) {
          stopped = true;
          break;
        }
        continue;
      }
      if (e) answers.push(...rrsOf(owner, e, q.type));
      break;
    }
    if (stopped) return { entry, packet: { ...header, flags: flags(NOERROR), answers } };
    if (!exists(current)) {
      return { entry, packet: { ...header, flags: flags(NXDOMAIN), answers, authorities: soaFor(current) } };
    }
    const negative = !answers.some((a) => a.type === q.type);
    return { entry, packet: { ...header, flags: flags(NOERROR), answers, authorities: negative ? soaFor(current) : [] } };
  };

  const decoySocket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    decoySocket.once('error', reject);
    decoySocket.bind(0, '127.0.0.1', () => resolve());
  });

  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };

  /** decode, log and answer one message; `send` writes one DNS message back */
  const handle = (msg: Buffer, transport: 'udp' | 'tcp', send: (buf: Buffer) => void, peer?: dgram.RemoteInfo): void => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    if (query.type !== 'query') return;
    const q = query.questions?.[0];
    if (!q) {
      send(dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags: FORMERR }));
      return;
    }
    queries.push({ name: q.name, type: q.type, transport });
    const qname = norm(q.name);
    const count = (seenCount.get(qname) ?? 0) + 1;
    seenCount.set(qname, count);

    const { packet, entry } = answer(query, q);
    if (entry?.drop || (entry?.dropFirst !== undefined && count <= entry.dropFirst)) return;

    const hasOpt = (query.additionals ?? []).some((a) => a.type === 'OPT');
    let wire = dnsPacket.encode(packet);
    if (entry?.noEdns && hasOpt) {
      wire = dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags: RA | FORMERR, questions: [q] });
    } else if (entry?.malformed) {
      // a valid header promising a question, then a label running past the end
      wire = Buffer.concat([wire.subarray(0, 12), Buffer.from([63, 0x61])]);
    }
    if (transport === 'udp') {
      const opt = query.additionals?.find((a) => a.type === 'OPT');
      const limit = opt && opt.type === 'OPT' ? Math.max(512, opt.udpPayloadSize) : 512;
      if (!entry?.malformed && (entry?.truncate || wire.length > limit)) {
        wire = dnsPacket.encode({ ...packet, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [] });
      }
    }
    let delay = entry?.delayMs ?? 0;
    if (transport === 'udp' && entry?.spoof && peer) {
      const decoy = (id: number, question: Question): Buffer =>
        dnsPacket.encode({
          ...packet,
          id,
          flags: RA | dnsPacket.AUTHORITATIVE_ANSWER,
          questions: [question],
          answers: [{ name: question.name, type: 'A', ttl: 300, data: DECOY_ADDRESS }],
          authorities: [],
        });
      const id = query.id ?? 0;
      decoySocket.send(decoy(id, q), peer.port, peer.address); // right everything, wrong source port
      send(decoy(id ^ 0x5a5a, q)); // wrong id
      send(decoy(id, { ...q, name: `decoy.${q.name}` })); // wrong name
      send(decoy(id, { ...q, type: q.type === 'A' ? 'AAAA' : 'A' })); // wrong type
      delay = Math.max(delay, 25);
    }
    later(delay, () => send(wire));
  };

  let listener: DnsListener;
  try {
    listener = await listenDns(handle);
  } catch (error) {
    decoySocket.close();
    throw error;
  }
  const { port } = listener;
  let closing: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    queries,
    set(name, entry) {
      if (entry === undefined) records.delete(norm(name));
      else records.set(norm(name), entry);
    },
    close() {
      closing ??= (async () => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        await Promise.all([listener.close(), new Promise<void>((resolve) => decoySocket.close(() => resolve()))]);
      })();
      return closing;
    },
  };
}
