/**
 * Getting one answer for one question: UDP first, TCP when the UDP answer is truncated,
 * the next server on failure, `rounds` passes over the server list.
 *
 * Anti-spoofing (RFC 5452): every attempt uses a fresh socket (so the OS picks a fresh
 * random source port) and a random 16-bit id; the UDP socket is connect()ed so the
 * kernel drops datagrams from any other address/port; a response counts only if its id,
 * QR bit, question name (case-insensitive) and type match. Anything else is ignored and
 * we keep waiting, so a stray or forged packet cannot end the attempt.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { DnsError, type DnsErrorCode } from './errors.js';
import { sameName } from './names.js';
import { formatServer, type NameServer } from './servers.js';

export type QueryType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR' | 'CNAME';

export interface Question {
  /** normalized (lower case, no trailing dot) */
  name: string;
  type: QueryType;
}

export interface DnsResponse {
  /** 4-bit header RCODE: 0 NOERROR, 1 FORMERR, 2 SERVFAIL, 3 NXDOMAIN, 4 NOTIMP, 5 REFUSED */
  rcode: number;
  truncated: boolean;
  answers: Answer[];
  authorities: Answer[];
  /** the response carried an OPT record, i.e. the server speaks EDNS0 */
  edns: boolean;
  server: NameServer;
  transport: 'udp' | 'tcp';
}

export interface ExchangeOptions {
  timeoutMs: number;
  edns: boolean;
}

/** RFC 9715 / DNS flag day 2020: large enough for most answers, small enough to avoid IP fragmentation. */
export const EDNS_UDP_SIZE = 1232;

const RCODE: Record<number, DnsErrorCode> = { 1: 'FORMERR', 2: 'SERVFAIL', 4: 'NOTIMP', 5: 'REFUSED' };

function encodeQuery(id: number, q: Question, edns: boolean): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: q.name, type: q.type, class: 'IN' }],
    additionals: edns
      ? [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: EDNS_UDP_SIZE,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  });
}

type Match = DnsResponse | 'ignore' | 'malformed';

/** Does `msg` answer query `id` for `q`? */
function matchResponse(msg: Buffer, id: number, q: Question, server: NameServer, transport: 'udp' | 'tcp'): Match {
  // Cheap checks on the raw header first: most strays are rejected without decoding.
  if (msg.length < 12 || msg.readUInt16BE(0) !== id || (msg[2]! & 0x80) === 0) return 'ignore';
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(msg);
  } catch {
    return 'malformed';
  }
  const rcode = (packet.flags ?? 0) & 0x0f;
  const questions = packet.questions ?? [];
  const matches = questions.length === 1 && questions[0]!.type === q.type && sameName(questions[0]!.name, q.name);
  // Some servers drop the question from error replies. Accept that only for rcodes that
  // make us try elsewhere, never for data or NXDOMAIN, which a forger would want to inject.
  const questionless = questions.length === 0 && RCODE[rcode] !== undefined;
  if (!matches && !questionless) return 'ignore';
  const additionals = packet.additionals ?? [];
  return {
    rcode,
    truncated: packet.flag_tc,
    answers: packet.answers ?? [],
    authorities: packet.authorities ?? [],
    edns: additionals.some((a) => a.type === 'OPT'),
    server,
    transport,
  };
}

function randomId(): number {
  return randomInt(0, 0x10000);
}

function netError(server: NameServer, err: unknown): DnsError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? String(err);
  return new DnsError('NETERR', `DNS server ${formatServer(server)}: ${code}`, { cause: err });
}

export function exchangeUdp(server: NameServer, q: Question, opts: ExchangeOptions): Promise<DnsResponse> {
  return new Promise((resolve, reject) => {
    const id = randomId();
    const query = encodeQuery(id, q, opts.edns);
    const socket = dgram.createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let done = false;
    let sawMalformed = false;
    const finish = (err: DnsError | undefined, res?: DnsResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => {
      // a matching id with an undecodable body is a broken server, not silence
      const code = sawMalformed ? 'BADRESP' : 'TIMEOUT';
      finish(new DnsError(code, `DNS server ${formatServer(server)}: ${code === 'TIMEOUT' ? `no answer in ${opts.timeoutMs} ms` : 'undecodable response'}`));
    }, opts.timeoutMs);
    timer.unref();
    // connected UDP: ICMP port-unreachable surfaces as ECONNREFUSED at once (fast failover)
    socket.on('error', (err) => finish(netError(server, err)));
    socket.on('message', (msg) => {
      const m = matchResponse(msg, id, q, server, 'udp');
      if (m === 'malformed') sawMalformed = true;
      else if (m !== 'ignore') finish(undefined, m);
    });
    socket.connect(server.port, server.host, () => {
      if (done) return;
      socket.send(query, (err) => {
        if (err) finish(netError(server, err));
      });
    });
  });
}

export function exchangeTcp(server: NameServer, q: Question, opts: ExchangeOptions): Promise<DnsResponse> {
  return new Promise((resolve, reject) => {
    const id = randomId();
    const query = encodeQuery(id, q, opts.edns);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length);
    let buffered = Buffer.alloc(0);
    let done = false;
    const socket = net.connect({ host: server.host, port: server.port });
    const finish = (err: DnsError | undefined, res?: DnsResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(
      () => finish(new DnsError('TIMEOUT', `DNS server ${formatServer(server)} (tcp): no answer in ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    timer.unref();
    socket.on('connect', () => socket.write(Buffer.concat([prefix, query])));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) return;
      // One query per connection, so anything but our answer means a broken server.
      const m = matchResponse(buffered.subarray(2, 2 + length), id, q, server, 'tcp');
      if (m === 'ignore' || m === 'malformed') {
        finish(new DnsError('BADRESP', `DNS server ${formatServer(server)} (tcp): response does not match the query`));
      } else {
        finish(undefined, m);
      }
    });
    socket.on('error', (err) => finish(netError(server, err)));
    socket.on('close', () =>
      finish(new DnsError('NETERR', `DNS server ${formatServer(server)} (tcp): connection closed before the answer`)),
    );
  });
}

/** One attempt on one server: UDP, then TCP if truncated, then without EDNS if the server rejects it. */
async function attempt(server: NameServer, q: Question, timeoutMs: number): Promise<DnsResponse> {
  let res = await exchangeUdp(server, q, { timeoutMs, edns: true });
  // RFC 6891 §7: a FORMERR without OPT may be a pre-EDNS server; ask it plainly once.
  if (res.rcode === 1 && !res.edns) res = await exchangeUdp(server, q, { timeoutMs, edns: false });
  if (res.truncated) res = await exchangeTcp(server, q, { timeoutMs, edns: res.edns });
  return res;
}

export interface QueryOptions {
  servers: readonly NameServer[];
  timeoutMs: number;
  rounds: number;
}

/**
 * Ask the servers in order until one gives a usable answer (NOERROR or NXDOMAIN).
 * SERVFAIL, REFUSED etc. and timeouts move on to the next server. If all fail, the error
 * is TIMEOUT only when every attempt timed out, else the last non-timeout failure
 * (it says more about what is wrong).
 */
export async function queryServers(q: Question, opts: QueryOptions): Promise<DnsResponse> {
  let lastError: DnsError | undefined;
  let lastTimeout: DnsError | undefined;
  for (let round = 0; round < opts.rounds; round++) {
    for (const server of opts.servers) {
      try {
        const res = await attempt(server, q, opts.timeoutMs);
        if (res.rcode === 0 || res.rcode === 3) return res;
        const code = RCODE[res.rcode] ?? 'BADRESP';
        lastError = new DnsError(code, `DNS server ${formatServer(server)} answered ${code} for ${q.name} ${q.type}`, {
          hostname: q.name,
        });
      } catch (err) {
        if (!(err instanceof DnsError)) throw err;
        if (err.code === 'TIMEOUT') lastTimeout = err;
        else lastError = err;
      }
    }
  }
  if (lastError) throw new DnsError(lastError.code, lastError.message, { hostname: q.name, cause: lastError.cause });
  const servers = opts.servers.map(formatServer).join(', ');
  throw new DnsError(
    'TIMEOUT',
    `${q.name} ${q.type}: no answer from ${servers} (${opts.rounds} round(s), ${opts.timeoutMs} ms each)`,
    { hostname: q.name, cause: lastTimeout },
  );
}
