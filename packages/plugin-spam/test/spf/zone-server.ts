/**
 * A DNS server on loopback (UDP and TCP on one port) that serves zones written the way
 * the OpenSPF test suite writes them (rfc7208-tests.yml `zonedata`):
 *
 *   example.com:
 *     - TXT: v=spf1 -all          # a string, or a list of character-strings ([] = none)
 *     - SPF: v=spf1 -all          # copied to TXT when the name has no TXT entry at all
 *     - TXT: NONE                 # the name exists, no TXT (and SPF is not copied)
 *     - MX: [10, mx.example.com]
 *     - A / AAAA / PTR / CNAME: value
 *     - TIMEOUT                   # questions this name cannot answer from the entries before it get no reply
 *
 * The core's startTestDnsServer cannot do per-type silence, "NONE", latin1 octets or
 * raw SPF-to-TXT copying, hence these answers; the sockets are the core's (listenDns). Queries are logged so tests can assert what
 * was (not) asked.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import { listenDns } from '@mailgate/core/testing';

export type SuiteRecord = string | Record<string, unknown>;
export type SuiteZone = Record<string, SuiteRecord[]>;

export interface ZoneServer {
  address: string;
  /** "name TYPE" of every question received (name lower-cased) */
  queries: string[];
  close(): Promise<void>;
}

interface Entry {
  type: string;
  value: unknown;
}

type NameData = Array<Entry | 'TIMEOUT'>;

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** YAML "\xEF" is the code point U+00EF: the suite means the octet, so such text is sent as latin1. */
function octets(text: string): Buffer {
  return /^[\x00-\xff]*$/.test(text) ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
}

function txtData(value: unknown): Buffer[] {
  if (Array.isArray(value)) return value.map((v) => octets(String(v)));
  const bytes = octets(String(value));
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  return chunks.length > 0 ? chunks : [Buffer.alloc(0)];
}

/** The suite's rules (as its reference driver applies them): SPF copied to TXT, NONE dropped. */
function compile(zone: SuiteZone): Map<string, NameData> {
  const names = new Map<string, NameData>();
  for (const [owner, records] of Object.entries(zone)) {
    const data: NameData = [];
    const spf: Entry[] = [];
    let hasTxt = false;
    for (const record of records ?? []) {
      if (record === 'TIMEOUT') {
        data.push('TIMEOUT');
        continue;
      }
      if (typeof record !== 'object' || record === null) continue;
      for (const [type, value] of Object.entries(record)) {
        if (type === 'TXT') hasTxt = true;
        if (value === 'NONE') continue;
        if (type === 'SPF') spf.push({ type: 'TXT', value });
        data.push({ type, value });
      }
    }
    if (!hasTxt) data.push(...spf);
    names.set(norm(owner), data);
  }
  return names;
}

function rr(owner: string, entry: Entry): Answer | undefined {
  const base = { name: owner, ttl: 300, class: 'IN' as const };
  switch (entry.type) {
    case 'A':
    case 'AAAA':
    case 'PTR':
    case 'CNAME':
      return { ...base, type: entry.type, data: String(entry.value) } as Answer;
    case 'TXT':
      return { ...base, type: 'TXT', data: txtData(entry.value) };
    case 'MX': {
      const [preference, exchange] = entry.value as [number, string];
      return { ...base, type: 'MX', data: { preference, exchange: exchange || '.' } };
    }
    default:
      return undefined;
  }
}

export async function startZoneServer(zone: SuiteZone): Promise<ZoneServer> {
  const names = compile(zone);
  const queries: string[] = [];

  const exists = (name: string): boolean => {
    if (names.has(name)) return true;
    for (const key of names.keys()) if (key.endsWith(`.${name}`)) return true;
    return false;
  };

  /** The reply, or undefined for silence. CNAMEs are followed inside the zone, loops left to the client. */
  const answer = (query: DecodedPacket, q: Question): Buffer | undefined => {
    const answers: Answer[] = [];
    const visited = new Set<string>();
    let current = norm(q.name);
    let owner = q.name;
    let rcode = 0;
    for (;;) {
      const data = names.get(current);
      if (!data) {
        if (!exists(current)) rcode = 3;
        break;
      }
      const matching: Answer[] = [];
      let cname: string | undefined;
      let silent = false;
      for (const item of data) {
        if (item === 'TIMEOUT') {
          silent = matching.length === 0; // the reference driver answers only what it found before TIMEOUT
          break;
        }
        if (item.type === q.type) matching.push(rr(owner, item)!);
        else if (item.type === 'CNAME' && q.type !== 'CNAME') cname ??= String(item.value);
      }
      if (silent) return undefined;
      if (matching.length > 0 || cname === undefined) {
        answers.push(...matching.filter((a) => a !== undefined));
        break;
      }
      answers.push(rr(owner, { type: 'CNAME', value: cname })!);
      visited.add(current);
      current = norm(cname);
      owner = current;
      if (visited.has(current)) break; // a loop: the answer shows it, the resolver must notice
    }
    // negative answers carry an SOA, as real servers' do (RFC 2308)
    const soa: Answer[] = answers.some((a) => a.type === q.type)
      ? []
      : [{ name: 'test', type: 'SOA', ttl: 60, data: { mname: 'ns.test', rname: 'hostmaster.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 } }];
    return dnsPacket.encode({
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: [q],
      answers,
      authorities: soa,
      additionals: (query.additionals ?? []).some((a) => a.type === 'OPT')
        ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
        : [],
    });
  };

  const handle = (msg: Buffer, udp: boolean): Buffer | undefined => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const q = query.questions?.[0];
    if (query.type !== 'query' || !q) return undefined;
    if (udp) queries.push(`${norm(q.name)} ${q.type}`);
    const wire = answer(query, q);
    if (!wire || !udp) return wire;
    const opt = query.additionals?.find((a) => a.type === 'OPT');
    const limit = opt && opt.type === 'OPT' ? Math.max(512, opt.udpPayloadSize) : 512;
    if (wire.length <= limit) return wire;
    // too big for UDP: TC bit and nothing else, the client asks again over TCP
    return dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE, questions: [q] });
  };

  const listener = await listenDns((msg, transport, send) => {
    const out = handle(msg, transport === 'udp');
    if (out) send(out);
  });
  return { address: listener.address, queries, close: () => listener.close() };
}
