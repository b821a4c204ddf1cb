import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { TlsInfo } from '../session.js';
import type { EngineIO, SmtpSession } from '../smtp/engine.js';

/** How long a closing socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 5_000;

/**
 * Glue between one socket and one SmtpSession: bytes in, replies out, the idle
 * timer, STARTTLS, half-close, and back-pressure. All I/O of a session lives here.
 *
 * Sockets are half-open (allowHalfOpen): when the peer shuts down its sending side
 * (TCP FIN, or a TLS close_notify), everything it sent before is still processed and
 * answered, then the connection is closed (`onEnd`).
 */
export class Connection implements EngineIO {
  session!: SmtpSession;
  private socket: Socket;
  private closing = false;
  /** A socket of this connection has closed: the slot is given back, the session ended. */
  private gone = false;
  /** The peer will send nothing more (FIN or close_notify seen). */
  private inputEnded = false;
  /** Fails the STARTTLS handshake in progress, if one is. */
  private abortUpgrade: ((error: Error) => void) | undefined;
  /**
   * The engine is working (between cork and uncork: a command or body chunk being
   * processed, a plugin deciding) or has paused reading (connect hook, spool back-pressure).
   * The idle timer measures the client's silence, not ours: it does not fire then.
   */
  private corked = false;
  private paused = false;
  private timeoutDeferred = false;
  /**
   * The peer is not reading our replies (the socket's write buffer is full): stop reading
   * its commands until the replies drain, or a client that pipelines without reading makes
   * us buffer replies without bound.
   */
  private writeBlocked = false;

  /**
   * @param raw for an implicit-TLS `socket`, the TCP socket under it. Whichever of the
   *   sockets closes first ends the connection, so the slot is given back exactly once
   *   however the pair comes apart.
   */
  constructor(
    socket: Socket,
    private readonly idleTimeout: number,
    /** The current TLS context for STARTTLS (read at each handshake: a reload replaces it). */
    private readonly secureContext: () => SecureContext | undefined,
    private readonly onGone: (connection: Connection) => void,
    private readonly raw?: Socket,
  ) {
    this.socket = socket;
  }

  /** Start reading; call once the session is attached. */
  attach(session: SmtpSession): void {
    this.session = session;
    this.bind(this.socket);
    this.socket.once('close', this.onClose);
    this.raw?.once('close', this.onClose);
  }

  private bind(socket: Socket): void {
    socket.setTimeout(this.idleTimeout);
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    socket.on('end', this.onEnd);
    // ECONNRESET and friends: 'close' follows and does the cleanup.
    socket.on('error', noop);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.session.feed(chunk);
  };

  private readonly onClose = (): void => {
    if (this.gone) return;
    this.gone = true;
    // One socket of a TLS pair closed: the other has nothing left to do either.
    this.socket.destroy();
    this.raw?.destroy();
    this.onGone(this);
    void this.session.ended();
  };

  /**
   * The peer shut down its sending side. 'end' comes after the last 'data', so every
   * byte it sent has been fed: `session.settled()` resolves once the engine has worked
   * through all of it (a pipelined transaction, its queue taps, QUIT) and only waits for
   * bytes that will not come; then close. Unfinished input (a command line without its
   * end, DATA without the final dot) is dropped by `session.ended()` when the socket
   * closes, spool file included. While the engine works the idle timer is deferred as
   * usual; while it waits for the peer to read our replies the timer runs, so a peer that
   * half-closes and never reads is still dropped.
   */
  private readonly onEnd = (): void => {
    if (this.inputEnded) return;
    this.inputEnded = true;
    // No handshake can complete without the peer's next flight.
    this.abortUpgrade?.(new Error('peer closed before the TLS handshake'));
    const finish = () => {
      if (!this.gone) this.close();
    };
    this.session.settled().then(finish, finish);
  };

  private readonly onTimeout = (): void => {
    if (this.closing) return;
    if (this.corked || this.paused) {
      this.timeoutDeferred = true;
      return;
    }
    this.session.timeout();
  };

  /** The engine is waiting for the client again: if the timer fired meanwhile, start it anew. */
  private idleAgain(): void {
    if (!this.timeoutDeferred || this.corked || this.paused || this.closing) return;
    this.timeoutDeferred = false;
    this.socket.setTimeout(this.idleTimeout);
  }

  write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (!socket.write(data) && !this.writeBlocked) {
      this.writeBlocked = true;
      socket.pause();
      socket.once('drain', () => {
        this.writeBlocked = false;
        if (!this.paused && !this.closing && socket === this.socket) socket.resume();
      });
    }
  }

  isWriteBlocked(): boolean {
    return this.writeBlocked;
  }

  /** Resolves once the replies drained, or the connection is gone. */
  writeDrained(): Promise<void> {
    const socket = this.socket;
    if (!this.writeBlocked || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    const socket = this.socket;
    socket.end();
    // A peer that never reads would keep the socket half-open forever. The timer is
    // cleared on close so it does not keep thousands of closed sockets alive for 5 s.
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  }

  /** Forcefully drop the connection (shutdown deadline reached). */
  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    if (!this.closing && !this.writeBlocked) this.socket.resume();
    this.idleAgain();
  }

  cork(): void {
    this.corked = true;
    this.socket.cork();
  }

  uncork(): void {
    this.corked = false;
    this.socket.uncork();
    this.idleAgain();
  }

  get startTls(): (() => Promise<TlsInfo>) | undefined {
    return this.secureContext() ? this.upgrade : undefined;
  }

  private readonly upgrade = (): Promise<TlsInfo> => {
    const raw = this.socket;
    // From here the TLS layer reads the TCP socket; the plaintext socket's 'end' can
    // only still come for a FIN read before, and onEnd then fails the handshake.
    raw.off('data', this.onData);
    raw.off('timeout', this.onTimeout);
    raw.setTimeout(0);
    if (this.inputEnded || this.closing) return Promise.reject(new Error('peer closed before the TLS handshake'));
    return new Promise<TlsInfo>((resolve, reject) => {
      const secure = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext()! });
      const fail = (error: Error) => {
        this.abortUpgrade = undefined;
        secure.destroy();
        reject(error);
      };
      this.abortUpgrade = fail;
      const handshakeTimeout = () => fail(new Error('TLS handshake timed out'));
      const ended = () => fail(new Error('peer closed during the TLS handshake'));
      secure.setTimeout(this.idleTimeout, handshakeTimeout);
      secure.once('error', fail);
      secure.once('end', ended);
      // Destroying the TLS socket destroys the TCP one, and the TCP one closing destroys the
      // TLS one; watch both anyway, like an implicit-TLS pair.
      secure.once('close', this.onClose);
      secure.once('secure', () => {
        this.abortUpgrade = undefined;
        secure.off('error', fail);
        secure.off('timeout', handshakeTimeout);
        secure.off('end', ended);
        this.socket = secure;
        // Any wait for the plaintext socket's 'drain' is moot now.
        this.writeBlocked = false;
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
