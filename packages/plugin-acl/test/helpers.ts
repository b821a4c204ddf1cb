import { execFile } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { accept, definePlugin, type Gateway, type GatewayConfigInput, type GatewayOptions } from '@mailgate/core';
import { startTestGateway, type TestGateway } from '@mailgate/core/testing';
import acl, { type AclOptionsInput } from '../src/index.js';

/** What the claiming test store saw: recipients claimed, and whether the ACL allowed relaying them. */
export interface Claims {
  claimed: Array<{ rcpt: string; relayAllowed: boolean }>;
  queued: Array<{ from: string; to: string[] }>;
}

/**
 * A tiny storage plugin for tests: claims recipients of local domains (like maildir)
 * and recipients the ACL marked relayAllowed (like the relay plugin); stores nothing.
 */
export function claimingStore(claims: Claims) {
  return definePlugin({
    name: 'test-store',
    setup({ tap, gateway }) {
      tap('claim', (_session, _tx, rcpt) => {
        const local = rcpt.address.domain === '' || gateway.isLocalDomain(rcpt.address.domain);
        const relayAllowed = rcpt.data.relayAllowed === true;
        if (!local && !relayAllowed) return undefined;
        claims.claimed.push({ rcpt: rcpt.text, relayAllowed });
        return accept();
      });
      tap('queue', (_session, tx) => {
        claims.queued.push({ from: tx.senderText, to: tx.recipients.map((r) => r.text) });
        return undefined;
      });
    },
  });
}

export interface AclGateway extends TestGateway {
  claims: Claims;
}

/** A gateway on loopback with the ACL (options as given) and the claiming store. */
export async function startAcl(
  options: AclOptionsInput,
  config: GatewayConfigInput = {},
  gatewayOptions: GatewayOptions = {},
  extra?: (gateway: Gateway) => void | Promise<void>,
): Promise<AclGateway> {
  const claims: Claims = { claimed: [], queued: [] };
  const gw = await startTestGateway(
    config,
    async (gateway) => {
      await gateway.use(acl, options);
      await extra?.(gateway);
      await gateway.use(claimingStore(claims));
    },
    gatewayOptions,
  );
  return Object.assign(gw, { claims });
}

export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

/** A line-oriented SMTP client for tests that can pick its source address (127.0.0.2 …). */
export class Client {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private ended = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.bind(socket);
  }

  static async connect(port: number, options: { host?: string; localAddress?: string } = {}): Promise<Client> {
    const socket = netConnect({ port, host: options.host ?? '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new Client(socket);
  }

  /** Connect and read the greeting. */
  static async open(port: number, options: { host?: string; localAddress?: string } = {}): Promise<{ client: Client; greeting: Reply }> {
    const client = await Client.connect(port, options);
    return { client, greeting: await client.read() };
  }

  private bind(socket: Socket): void {
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

  get closed(): boolean {
    return this.ended;
  }

  async read(timeoutMs = 5_000): Promise<Reply> {
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

  private parse(): Reply | undefined {
    let offset = 0;
    const lines: string[] = [];
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end < 0) return undefined;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line.slice(4));
      if (line[3] !== '-') {
        const text = this.buffer.slice(0, offset);
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines, text: text.trimEnd() };
      }
    }
  }

  async command(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  async startTls(): Promise<void> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.text}`);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.bind(secure);
  }

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

/** EHLO, MAIL FROM, then one RCPT per recipient; returns the RCPT replies. Leaves the transaction open. */
export async function tryRecipients(client: Client, from: string, recipients: readonly string[], ehlo = 'client.test'): Promise<Reply[]> {
  const hello = await client.command(`EHLO ${ehlo}`);
  if (hello.code !== 250) throw new Error(`EHLO: ${hello.text}`);
  const mail = await client.command(`MAIL FROM:<${from}>${/[^\x00-\x7f]/.test(recipients.join('')) ? ' SMTPUTF8' : ''}`);
  if (mail.code !== 250) throw new Error(`MAIL: ${mail.text}`);
  const replies: Reply[] = [];
  for (const r of recipients) replies.push(await client.command(`RCPT TO:${r.startsWith('<') ? r : `<${r}>`}`));
  return replies;
}

/** Send one whole message; returns the reply to the end of data (or the first refusal). */
export async function sendMessage(client: Client, from: string, to: readonly string[]): Promise<Reply> {
  const mail = await client.command(`MAIL FROM:<${from}>`);
  if (mail.code !== 250) return mail;
  for (const r of to) {
    const reply = await client.command(`RCPT TO:<${r}>`);
    if (reply.code !== 250) return reply;
  }
  const data = await client.command('DATA');
  if (data.code !== 354) return data;
  return client.command(`From: <${from}>\r\nSubject: test\r\n\r\nhello\r\n.`);
}

/** Run swaks; resolves with its exit code and output (never rejects on a non-zero exit). */
export function swaks(args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('swaks', [...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}
