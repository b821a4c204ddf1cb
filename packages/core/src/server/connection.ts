import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { TlsInfo } from '../session.js';
import type { EngineIO, SmtpSession } from '../smtp/engine.js';

/** How long a closing socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 5_000;

/**
 * Glue between one socket and one SmtpSession: bytes in, replies out, the idle
 * timer, STARTTLS, and back-pressure. All I/O of a session lives here.
 */
export class Connection implements EngineIO {
  session!: SmtpSession;
  private socket: Socket;
  private closing = false;

  constructor(
    socket: Socket,
    private readonly idleTimeout: number,
    private readonly secureContext: SecureContext | undefined,
    private readonly onGone: (connection: Connection) => void,
  ) {
    this.socket = socket;
  }

  /** Start reading; call once the session is attached. */
  attach(session: SmtpSession): void {
    this.session = session;
    this.bind(this.socket);
    this.socket.once('close', () => {
      this.onGone(this);
      void this.session.ended();
    });
  }

  private bind(socket: Socket): void {
    socket.setTimeout(this.idleTimeout);
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    // ECONNRESET and friends: 'close' follows and does the cleanup.
    socket.on('error', noop);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.session.feed(chunk);
  };

  private readonly onTimeout = (): void => {
    this.session.timeout();
  };

  write(data: string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    const socket = this.socket;
    socket.end();
    // A peer that never reads would keep the socket half-open forever.
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Forcefully drop the connection (shutdown deadline reached). */
  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.closing) this.socket.resume();
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  get startTls(): (() => Promise<TlsInfo>) | undefined {
    return this.secureContext ? this.upgrade : undefined;
  }

  private readonly upgrade = (): Promise<TlsInfo> => {
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('timeout', this.onTimeout);
    raw.setTimeout(0);
    return new Promise<TlsInfo>((resolve, reject) => {
      const secure = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext! });
      const fail = (error: Error) => {
        secure.destroy();
        reject(error);
      };
      const handshakeTimeout = () => fail(new Error('TLS handshake timed out'));
      secure.setTimeout(this.idleTimeout, handshakeTimeout);
      secure.once('error', fail);
      secure.once('secure', () => {
        secure.off('error', fail);
        secure.off('timeout', handshakeTimeout);
        this.socket = secure;
        this.bind(secure);
        resolve(tlsInfo(secure, false));
      });
    });
  };
}

export function tlsInfo(socket: TLSSocket, implicit: boolean): TlsInfo {
  return { protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null, implicit };
}

function noop(): void {}
