import { execFile } from 'node:child_process';
import { accept, definePlugin, type Gateway, type GatewayConfigInput, type GatewayOptions } from '@mailgate/core';
import { SmtpTestClient, startTestGateway, type SmtpReply, type TestGateway } from '@mailgate/core/testing';
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

/**
 * The core's SmtpTestClient with this suite's reply shape (`text`: the raw reply) and a
 * source address (127.0.0.2 …) for the per-IP and relayFrom tests.
 */
export class Client {
  private constructor(private readonly inner: SmtpTestClient) {}

  static async connect(port: number, options: { host?: string; localAddress?: string } = {}): Promise<Client> {
    const local = options.localAddress ? { localAddress: options.localAddress } : {};
    return new Client(await SmtpTestClient.connect(port, options.host ?? '127.0.0.1', local));
  }

  /** Connect and read the greeting. */
  static async open(port: number, options: { host?: string; localAddress?: string } = {}): Promise<{ client: Client; greeting: Reply }> {
    const client = await Client.connect(port, options);
    return { client, greeting: await client.read() };
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  async read(timeoutMs = 5_000): Promise<Reply> {
    return toReply(await this.inner.read(timeoutMs));
  }

  async command(line: string): Promise<Reply> {
    return toReply(await this.inner.command(line));
  }

  /** Send raw bytes (no line ending added), e.g. a pipelined group. */
  write(data: string): void {
    this.inner.write(data);
  }

  async startTls(): Promise<void> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.text}`);
    await this.inner.startTls();
  }

  waitClosed(timeoutMs = 5_000): Promise<boolean> {
    return this.inner.waitClosed(timeoutMs);
  }

  close(): void {
    this.inner.close();
  }
}

function toReply(reply: SmtpReply): Reply {
  return { code: reply.code, lines: reply.lines, text: reply.raw.trimEnd() };
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
