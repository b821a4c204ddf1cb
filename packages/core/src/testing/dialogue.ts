import type { Gateway } from '../gateway.js';
import type { EngineIO, PeerInfo, SmtpSession } from '../smtp/engine.js';

/**
 * Drive one SMTP session on bytes, with no socket: what the protocol tests use, and
 * what plugin authors can use to test a plugin's verdicts (like Fastify's inject()).
 *
 *   const s = await testSession(gateway);
 *   expect(await s.send('EHLO client.test\r\n')).toMatch(/^250-/);
 */
export class TestSession {
  /** Everything the server wrote so far. */
  output = '';
  closed = false;
  private consumed = 0;
  readonly session: SmtpSession;

  constructor(gateway: Gateway, peer: Partial<PeerInfo> & { tlsAvailable?: boolean } = {}) {
    const io: EngineIO = {
      write: (data) => {
        this.output += data;
      },
      close: () => {
        this.closed = true;
      },
      pause: () => undefined,
      resume: () => undefined,
    };
    this.session = gateway.openSession(io, peer);
  }

  /** Run the connect hook; returns the greeting. */
  async start(): Promise<string> {
    await this.session.start();
    return this.take();
  }

  /** Send bytes (one or more lines, or a chunk of a body) and return the replies they produced. */
  async send(data: string | Buffer): Promise<string> {
    this.session.feed(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    await this.session.settled();
    return this.take();
  }

  /** Send several chunks back to back (split anywhere), then return all replies. */
  async sendChunks(chunks: readonly (string | Buffer)[]): Promise<string> {
    for (const chunk of chunks) this.session.feed(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    await this.session.settled();
    return this.take();
  }

  /** Replies written since the last call. */
  take(): string {
    const text = this.output.slice(this.consumed);
    this.consumed = this.output.length;
    return text;
  }

  /** Reply codes in `text`, e.g. `['250', '354']` (last line of each multi-line reply only). */
  static codes(text: string): string[] {
    return text
      .split('\r\n')
      .filter((line) => /^\d{3} /.test(line) || /^\d{3}$/.test(line))
      .map((line) => line.slice(0, 3));
  }

  /** Simulate the peer going away. */
  async end(): Promise<void> {
    await this.session.ended();
  }
}

export async function testSession(gateway: Gateway, peer: Partial<PeerInfo> & { tlsAvailable?: boolean } = {}): Promise<TestSession> {
  const session = new TestSession(gateway, peer);
  await session.start();
  return session;
}
