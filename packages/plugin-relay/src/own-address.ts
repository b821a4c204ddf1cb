/**
 * Whether an address found by MX lookup (or in an address literal) is this host: mail
 * sent there comes straight back to us, and round it goes until the hop count bounces it
 * (51 SMTP sessions for one message). Postfix compares each MX address with its own
 * interface addresses and refuses with "mail for X loops back to myself" before
 * connecting; so do we.
 *
 * Own addresses are:
 * - loopback (127.0.0.0/8, ::1, their IPv4-mapped forms) and the unspecified addresses
 *   (0.0.0.0/8, ::): connecting to them reaches this host;
 * - the addresses the gateway listens on, and, when a listener is bound to a wildcard
 *   address, every address of the host's interfaces (`os.networkInterfaces()`, read at
 *   each check: interfaces come and go).
 *
 * Like Postfix the comparison ignores the port: an MX address of ours is ourselves
 * whatever port the relay would use. The one exception is `allowLoopbackMx` (tests,
 * several MTAs on one host's loopback): then a loopback address is ours only at a port
 * the gateway itself listens on.
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** One listening socket of the gateway. */
export interface Listening {
  address: string;
  port: number;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addSubnet('0.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** Loopback or unspecified: reaches this host whatever its interfaces. */
export function isLoopback(address: string): boolean {
  const f = family(address);
  return f !== undefined && LOOPBACK.check(address, f);
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}

export interface OwnAddressOptions {
  /** The gateway's listening sockets (read at each check). */
  listening: () => readonly Listening[];
  /** A loopback MX is allowed unless it is one of our own listening ports. */
  allowLoopback: boolean;
  /** The host's interface addresses; `os.networkInterfaces()` unless given (tests). */
  interfaces?: () => readonly string[];
}

/** `(address, port) → is this the gateway itself?` */
export function ownAddressCheck(options: OwnAddressOptions): (address: string, port: number) => boolean {
  const interfaces =
    options.interfaces ??
    (() =>
      Object.values(networkInterfaces())
        .flat()
        .map((i) => i?.address ?? '')
        .filter(Boolean));
  return (address, port) => {
    const f = family(address);
    if (f === undefined) return false;
    const listening = options.listening();
    if (isLoopback(address)) {
      if (!options.allowLoopback) return true;
      return listening.some((l) => l.port === port && (isWildcard(l.address) || isWildcard(address) || same(l.address, address)));
    }
    const own = new BlockList();
    for (const l of listening) {
      if (isWildcard(l.address)) {
        for (const a of interfaces()) add(own, a);
      } else add(own, l.address);
    }
    return own.check(address, f);
  };
}

function add(list: BlockList, address: string): void {
  const f = family(address.replace(/%.*$/, ''));
  if (f) list.addAddress(address.replace(/%.*$/, ''), f);
}

function same(a: string, b: string): boolean {
  const list = new BlockList();
  add(list, a);
  const f = family(b);
  return f !== undefined && list.check(b, f);
}
