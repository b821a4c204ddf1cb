/**
 * Where queries go: parsing "ip", "ip:port", "[v6]:port" (and a bare IPv6 address) and
 * reading the system nameservers from /etc/resolv.conf.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface NameServer {
  host: string;
  port: number;
  family: 4 | 6;
}

export function parseServer(spec: string): NameServer {
  const s = spec.trim();
  let host = s;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (/^[^:]+:\d+$/.test(s)) {
    // exactly one colon: IPv4 (or a name, rejected below) with a port; more colons is bare IPv6
    const i = s.lastIndexOf(':');
    host = s.slice(0, i);
    port = Number(s.slice(i + 1));
  }
  const family = isIP(host);
  if (family === 0) throw new TypeError(`DNS server must be an IP address, got ${JSON.stringify(spec)}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`bad DNS server port in ${JSON.stringify(spec)}`);
  }
  return { host, port, family: family === 6 ? 6 : 4 };
}

/** "nameserver" lines of resolv.conf; 127.0.0.1 when there are none (as glibc does). */
export function systemServers(path = '/etc/resolv.conf'): NameServer[] {
  const servers: NameServer[] = [];
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // no resolv.conf: fall through to the loopback default
  }
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    try {
      servers.push(parseServer(m[1]!));
    } catch {
      // ignore an unparseable line rather than refuse to start
    }
  }
  return servers.length > 0 ? servers : [{ host: '127.0.0.1', port: 53, family: 4 }];
}

export function formatServer(server: NameServer): string {
  return server.family === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
