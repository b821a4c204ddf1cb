/**
 * Where a destination domain's mail goes: a configured route, the smarthost, or the
 * domain's MX hosts (RFC 5321 §5.1): by preference, random order among equal
 * preferences; no MX records → the domain's own A/AAAA ("implicit MX"); a null MX
 * (RFC 7505) or a domain that does not exist → permanent failure; any other DNS
 * failure → try again later.
 */
import { isIP } from 'node:net';
import { isDnsError, type DnsResolver } from '@mailgate/core';
import type { Destination, RelayOptions } from './options.js';

export type TlsMode = 'opportunistic' | 'required' | 'none';

/** One address to try, in order. */
export interface Hop {
  /** Host name (for SNI, certificate checks and logs). */
  name: string;
  /** IP address to connect to. */
  address: string;
  port: number;
  tls: TlsMode;
  tlsVerify: boolean;
  implicitTls: boolean;
  auth: Destination['auth'];
  authInsecure: boolean;
  /** Pool key: connections are reused per key. */
  key: string;
}

export type Route =
  | { kind: 'hops'; hops: Hop[] }
  | { kind: 'permanent'; error: string; status: string }
  | { kind: 'temporary'; error: string };

export function splitHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const i = text.lastIndexOf(':');
  if (i > 0) return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
  return { host: text, port: defaultPort };
}

async function addresses(dns: DnsResolver, host: string): Promise<{ list: string[]; error?: unknown }> {
  if (isIP(host)) return { list: [host] };
  const list: string[] = [];
  let error: unknown;
  for (const resolve of [dns.resolve4.bind(dns), dns.resolve6.bind(dns)]) {
    try {
      list.push(...(await resolve(host)));
    } catch (e) {
      error ??= e;
    }
  }
  return { list, error: list.length ? undefined : error };
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** MX records by preference, shuffled among equal preferences. */
export function orderMx(records: Array<{ exchange: string; priority: number }>): Array<{ exchange: string; priority: number }> {
  const groups = new Map<number, Array<{ exchange: string; priority: number }>>();
  for (const r of records) {
    const g = groups.get(r.priority) ?? [];
    g.push(r);
    groups.set(r.priority, g);
  }
  return [...groups.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(groups.get(p)!));
}

/** `(address, port) → is it this host?` (own-address.ts); routes found by MX lookup skip such hops. */
export type OwnAddressCheck = (address: string, port: number) => boolean;

/**
 * Where `domain`'s mail goes. Configured routes and the smarthost are taken as given (a
 * content filter on localhost is legitimate); hops found by MX lookup (or implicit MX) and
 * address literals are checked with `isOwn`, and an MX host named `selfName` (the
 * gateway's hostname; behind NAT its public address is on no interface) is ours too,
 * unless `mxPort` sends that name elsewhere.
 */
export async function route(domain: string, options: RelayOptions, dns: DnsResolver, isOwn: OwnAddressCheck = () => false, selfName?: string): Promise<Route> {
  const configured = options.routes[domain] ?? options.smarthost;
  if (configured) {
    const defaultPort = configured.implicitTls ? 465 : options.port;
    const { host, port } = splitHostPort(configured.host, defaultPort);
    const found = await addresses(dns, host);
    if (!found.list.length) return { kind: 'temporary', error: `cannot resolve ${host}: ${describe(found.error)}` };
    const tls = configured.tls ?? 'opportunistic';
    return {
      kind: 'hops',
      hops: found.list.map((address) => ({
        name: host,
        address,
        port,
        tls,
        tlsVerify: configured.tlsVerify ?? false,
        implicitTls: configured.implicitTls,
        auth: configured.auth,
        authInsecure: configured.authInsecure,
        key: `${host}|${address}|${port}|${tls}|${configured.auth?.user ?? ''}`,
      })),
    };
  }

  // An address literal (`user@[192.0.2.1]`, `user@[IPv6:2001:db8::1]`) names the host
  // itself: no DNS (the literal is not a name); delivered there as Postfix does, unless it
  // is one of our own addresses.
  if (domain.startsWith('[')) return literalRoute(domain, options, isOwn);

  let mx: Array<{ exchange: string; priority: number }>;
  try {
    mx = await dns.resolveMx(domain);
  } catch (error) {
    // The resolver's text names the domain already (`example.test: no such domain`).
    if (isDnsError(error) && !error.temporary) return { kind: 'permanent', error: named(domain, error.message), status: '5.1.2' };
    return { kind: 'temporary', error: `MX lookup for ${domain} failed: ${describe(error)}` };
  }
  if (mx.some((r) => r.exchange === '.' || r.exchange === '')) {
    if (mx.length === 1) return { kind: 'permanent', error: `${domain} does not accept mail (null MX, RFC 7505)`, status: '5.1.10' };
    mx = mx.filter((r) => r.exchange !== '.' && r.exchange !== '');
  }
  const implicit = mx.length === 0;
  // A hostile domain may list many MX hosts (each with many addresses) that never answer:
  // only the best MAX_MX_HOSTS are looked at, and their addresses are looked up in order,
  // host after host, only until `mxAddressLimit` addresses are known (Postfix:
  // smtp_mx_address_limit), so one attempt costs at most that many connection timeouts.
  const hosts = implicit ? [{ exchange: domain, priority: 0 }] : orderMx(mx).slice(0, MAX_MX_HOSTS);
  const hops: Array<Hop & { priority: number }> = [];
  const limit = options.mxAddressLimit;
  let lastError: unknown;
  let allPermanent = true;
  /** An MX host whose address is ours: mail there comes straight back. */
  let ownHost: string | undefined;
  let ownPriority: number | undefined;
  /** The best preference whose host could not be looked up (a primary we cannot see now). */
  let unresolved: number | undefined;
  for (const { exchange, priority } of hosts) {
    if (hops.length >= limit || ownPriority !== undefined) break;
    const name = exchange.replace(/\.$/, '').toLowerCase();
    if (name === selfName && options.mxPort[name] === undefined) {
      ownHost = name;
      ownPriority = priority;
      break;
    }
    const found = await addresses(dns, name);
    if (!found.list.length) {
      unresolved ??= priority;
      lastError = found.error;
      if (!(isDnsError(found.error) && !found.error.temporary) && found.error !== undefined) allPermanent = false;
      continue;
    }
    const port = options.mxPort[name] ?? options.port;
    for (const address of found.list) {
      if (hops.length >= limit) break;
      if (isOwn(address, port)) {
        ownHost = `${name}[${address}]`;
        ownPriority = priority;
        break;
      }
      hops.push({ ...mxHop(name, address, port, options), priority });
    }
  }
  // RFC 5321 §5.1: when we are one of the domain's MX hosts, only better ones (lower
  // preference) may get the mail; ours and the worse ones would send it back to us.
  const usable = ownPriority === undefined ? hops : hops.filter((h) => h.priority < ownPriority!);
  if (usable.length) return { kind: 'hops', hops: usable.map(({ priority: _, ...hop }) => hop) };
  // We are a backup MX and a better one exists but cannot be looked up now: keep the mail
  // and try again, as Postfix does ("unable to find primary relay"), never a bounce.
  if (ownPriority !== undefined && unresolved !== undefined && unresolved < ownPriority) {
    return { kind: 'temporary', error: `unable to find primary relay for ${domain}: ${describe(lastError)}` };
  }
  // Postfix: "mail for X loops back to myself", a permanent failure (5.4.6).
  if (ownHost) return { kind: 'permanent', error: `mail for ${domain} loops back to myself (MX ${ownHost} is this host)`, status: '5.4.6' };
  if (implicit && allPermanent) return { kind: 'permanent', error: `${domain} has no MX and no address records`, status: '5.1.2' };
  return { kind: 'temporary', error: `no reachable address for ${domain}'s mail exchangers: ${describe(lastError)}` };
}

/** Most MX records of a domain looked at (by preference); the rest are ignored. */
export const MAX_MX_HOSTS = 10;

function mxHop(name: string, address: string, port: number, options: RelayOptions): Hop {
  return {
    name,
    address,
    port,
    tls: options.tls,
    tlsVerify: options.tlsVerify,
    implicitTls: false,
    auth: undefined,
    authInsecure: false,
    key: `${name}|${address}|${port}|${options.tls}`,
  };
}

/** `[192.0.2.1]`, `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3): the one hop, or why there is none. */
function literalRoute(domain: string, options: RelayOptions, isOwn: OwnAddressCheck): Route {
  const m = /^\[(?:IPv6:)?([^\]]*)\]$/i.exec(domain);
  const address = m?.[1] ?? '';
  const v6 = /^\[IPv6:/i.test(domain);
  if (!m || isIP(address) !== (v6 ? 6 : 4)) return { kind: 'permanent', error: `${domain} is not an address literal this relay can deliver to`, status: '5.1.2' };
  const port = options.mxPort[domain] ?? options.port;
  if (isOwn(address, port)) return { kind: 'permanent', error: `mail for ${domain} loops back to myself`, status: '5.4.6' };
  return { kind: 'hops', hops: [mxHop(domain, address, port, options)] };
}

/** `text`, with `name: ` before it unless it names `name` already. */
function named(name: string, text: string): string {
  return text.toLowerCase().includes(name.toLowerCase()) ? text : `${name}: ${text}`;
}

function describe(error: unknown): string {
  if (error === undefined) return 'no address records';
  return error instanceof Error ? error.message : String(error);
}
