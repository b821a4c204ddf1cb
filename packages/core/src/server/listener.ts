import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from '../log.js';
import type { EngineContext } from '../smtp/engine.js';
import { SmtpSession } from '../smtp/engine.js';
import { clientKey } from './client-key.js';
import { Connection, tlsInfo } from './connection.js';

export interface ListenerOptions {
  host: string;
  port: number;
  /** implicit: TLS from the first byte (port 465 style); starttls/none: plain, STARTTLS offered when a context exists. */
  tls: 'none' | 'starttls' | 'implicit';
}

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** IPv6 clients are counted per network of this prefix length (see clientKey). */
  ipv6PrefixLength: number;
  idleTimeout: number;
}

/** Per-gateway connection accounting shared by all listeners (limits are per gateway, not per port). */
export class ConnectionTable {
  readonly all = new Set<Connection>();
  /** Open connections per client key: an IPv4 address or an IPv6 prefix (clientKey). */
  private readonly perIp = new Map<string, number>();
  /** Admitted connections, including implicit-TLS ones still in their handshake. */
  private open = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  /** The key a client is counted by. */
  keyOf(ip: string): string {
    return clientKey(ip, this.limits.ipv6PrefixLength);
  }

  /** Returns the refusal text when a limit is reached, else registers the peer (by its `keyOf`). */
  admit(key: string): string | undefined {
    if (this.open >= this.limits.maxConnections) return 'Too many connections, try again later';
    const n = this.perIp.get(key) ?? 0;
    if (n >= this.limits.maxConnectionsPerIp) return 'Too many connections from your address, try again later';
    this.perIp.set(key, n + 1);
    this.open++;
    return undefined;
  }

  release(key: string): void {
    this.open--;
    const n = (this.perIp.get(key) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(key);
    else this.perIp.set(key, n);
  }

  /** Admitted connections (handshakes included) and distinct client keys holding them: both 0 when idle. */
  get counts(): { open: number; clients: number } {
    return { open: this.open, clients: this.perIp.size };
  }
}

let sessionCounter = 0;
const sessionPrefix = Date.now().toString(36).toUpperCase();

/** A short unique session id: process start time and a counter, both base 36. */
export function nextSessionId(): string {
  return `${sessionPrefix}${(++sessionCounter).toString(36).toUpperCase()}`;
}

/** One listening socket that turns connections into SMTP sessions. */
export class Listener {
  private server: Server | undefined;
  /** Implicit-TLS sockets still in their handshake (not yet sessions). */
  private readonly handshaking = new Set<TLSSocket>();

  constructor(
    readonly options: ListenerOptions,
    private readonly ctx: EngineContext,
    private readonly table: ConnectionTable,
    private readonly limits: ConnectionLimits,
    /** The current TLS context (read at each handshake: a reload replaces it). */
    private readonly secureContext: () => SecureContext | undefined,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<AddressInfo> {
    const implicit = this.options.tls === 'implicit';
    // Implicit TLS: a plain server whose sockets are wrapped in TLS here, because
    // tls.createServer() ignores a `secureContext` option (it builds its own from key/cert)
    // and would fail every handshake.
    // allowHalfOpen: a client that shuts down its sending side after pipelining a whole
    // transaction (`nc -N`, shutdown(SHUT_WR)) still reads our replies; the Connection
    // answers what it received and then closes (see Connection.onEnd).
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.admit(socket, implicit));
    server.maxConnections = this.limits.maxConnections + 64;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host, port: this.options.port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.log.error('listener error', { error }));
    return server.address() as AddressInfo;
  }

  get address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  /** Stop accepting; existing connections go on. */
  stopAccepting(): Promise<void> {
    const server = this.server;
    // close() stops listening at once; its callback would wait until every connection
    // has ended, which is what the graceful shutdown still has to bring about (421 to
    // idle sessions), so waiting for it here deadlocks close() until clients leave.
    if (server?.listening) server.close();
    for (const socket of this.handshaking) socket.destroy();
    return Promise.resolve();
  }

  /**
   * Count the connection against the limits before anything else, so a flood of
   * unfinished TLS handshakes on an implicit-TLS port is capped like any other.
   */
  private admit(socket: Socket, implicit: boolean): void {
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const key = this.table.keyOf(ip);
    const refusal = this.table.admit(key);
    socket.on('error', noop);
    if (refusal) {
      // One line per refused connection, as for any refusal (Postfix logs its anvil limits)
      this.log.info('refused', { stage: 'connect', client: ip, port: this.options.port, reply: `421 4.7.0 ${refusal}`, reason: 'connection limit' });
      // Without TLS we cannot speak SMTP on an implicit port: just close it there.
      if (implicit) socket.destroy();
      else {
        socket.end(`421 4.7.0 ${refusal}\r\n`);
        setTimeout(() => socket.destroy(), 2_000).unref();
      }
      return;
    }
    if (implicit) this.handshake(socket, ip, key);
    else this.accept(socket, ip, key);
  }

  /** Implicit TLS: complete the handshake (within idleTimeout), then start the session. */
  private handshake(raw: Socket, ip: string, key: string): void {
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext()! });
    this.handshaking.add(secure);
    secure.once('close', () => this.handshaking.delete(secure));
    // Until the session takes over, the slot is ours to give back, however the
    // handshake ends (error, timeout, or the peer just closing).
    let handedOver = false;
    raw.once('close', () => {
      if (!handedOver) this.table.release(key);
    });
    const fail = (error: Error) => {
      // Failed TLS handshakes on implicit listeners: log (at info, as Postfix does), never crash.
      this.log.info('TLS handshake failed', { client: ip, port: this.options.port, error: error.message });
      secure.destroy();
      raw.destroy();
    };
    const timeout = () => fail(new Error('TLS handshake timed out'));
    // The sockets are half-open: a peer that stops sending before the handshake is done
    // can never finish it, and would otherwise hold its slot until the timeout.
    const ended = () => fail(new Error('peer closed during the TLS handshake'));
    secure.setTimeout(this.limits.idleTimeout, timeout);
    secure.once('error', fail);
    secure.once('end', ended);
    secure.once('secure', () => {
      secure.off('error', fail);
      secure.off('timeout', timeout);
      secure.off('end', ended);
      secure.setTimeout(0);
      this.handshaking.delete(secure);
      handedOver = true; // from here on the Connection releases the slot when it closes
      this.accept(secure, ip, key, raw);
    });
  }

  /** Start the session on `socket`; `raw` is the TCP socket under an implicit-TLS one. */
  private accept(socket: Socket, ip: string, key: string, raw?: Socket): void {
    const implicit = raw !== undefined;
    const gone = (c: Connection) => {
      this.table.all.delete(c);
      this.table.release(key);
    };
    const connection = new Connection(socket, this.limits.idleTimeout, implicit ? () => undefined : this.secureContext, gone, raw);
    this.table.all.add(connection);
    const session = new SmtpSession(this.ctx, connection, {
      id: nextSessionId(),
      remoteAddress: ip,
      remotePort: socket.remotePort ?? 0,
      localAddress: normalizeIp(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
      ...(implicit ? { tls: tlsInfo(socket as TLSSocket, true) } : {}),
    });
    connection.attach(session);
    void session.start();
  }
}

/** `::ffff:192.0.2.1` (IPv4-mapped, from dual-stack sockets) → `192.0.2.1`, so rules and limits see one form. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function noop(): void {}
