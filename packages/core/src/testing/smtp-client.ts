import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface SmtpReply {
  code: number;
  /** Lines of text without the code and separator. */
  lines: string[];
  /** The reply exactly as received. */
  raw: string;
}

/**
 * A deliberately dumb SMTP client for tests: it sends exactly the bytes it is
 * given (so hostile input can be tested) and parses replies, nothing more.
 */
export class SmtpTestClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private ended = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  /** `localAddress` picks the source address (e.g. 127.0.0.2, to test per-IP limits). */
  static async connect(port: number, host = '127.0.0.1', options: { tls?: boolean; localAddress?: string } = {}): Promise<SmtpTestClient> {
    const local = options.localAddress ? { localAddress: options.localAddress } : {};
    const socket = options.tls
      ? tlsConnect({ port, host, rejectUnauthorized: false, servername: isIP(host) ? undefined : host, ...local } as never)
      : netConnect({ port, host, ...local });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new SmtpTestClient(socket);
  }

  private listen(socket: Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Read the next complete reply (multi-line aware). Rejects on timeout or close. */
  async read(timeoutMs = 5_000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.parse();
      if (reply) return reply;
      if (this.ended) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; buffer: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private parse(): SmtpReply | undefined {
    let offset = 0;
    const lines: string[] = [];
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end < 0) return undefined;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line.slice(4));
      if (line[3] !== '-') {
        const raw = this.buffer.slice(0, offset);
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines, raw };
      }
    }
  }

  /** Send raw bytes (no line ending added). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send a line (CRLF added) and read one reply. */
  async command(line: string): Promise<SmtpReply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** Received bytes not yet consumed by read() (e.g. to check that no extra reply came). */
  get pending(): string {
    return this.buffer;
  }

  /**
   * Upgrade after a `220` to STARTTLS. Throws if the server sent anything after the
   * 220 in plaintext: that is a reply to a command injected before the handshake
   * (CVE-2011-0411) and must not be hidden by dropping it.
   */
  async startTls(servername = 'localhost'): Promise<void> {
    if (this.buffer) throw new Error(`server sent data after the STARTTLS reply, before TLS: ${JSON.stringify(this.buffer)}`);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false, servername });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.listen(secure);
  }

  /** Wait until the server closes the connection (or the timeout passes). */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }
}
