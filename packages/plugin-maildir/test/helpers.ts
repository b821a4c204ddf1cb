import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SmtpTestClient, startTestGateway, type TestGateway } from '@mailgate/core/testing';
import type { GatewayConfigInput } from '@mailgate/core';
import maildir, { type MaildirOptionsInput } from '@mailgate/plugin-maildir';

const run = promisify(execFile);

/** Debian's python3 (has the stdlib `mailbox` module); pyenv's may not. */
export const PYTHON = '/usr/bin/python3';

export interface StoredMessage {
  /** Maildir++ folder name ('' = INBOX). */
  folder: string;
  /** "new" or "cur". */
  subdir: string;
  name: string;
  bytes: Buffer;
}

const READER = String.raw`
import base64, json, mailbox, sys
def dump(mb, folder, out):
    for key in sorted(mb.keys()):
        sub = mb._lookup(key)
        with mb.get_file(key) as f:
            data = f.read()
        sd, _, name = sub.partition('/')
        out.append({'folder': folder, 'subdir': sd, 'name': name, 'b64': base64.b64encode(data).decode()})
    for name in sorted(mb.list_folders()):
        dump(mb.get_folder(name), (folder + '.' if folder else '') + name, out)
out = []
dump(mailbox.Maildir(sys.argv[1], factory=None, create=False), '', out)
json.dump(out, sys.stdout)
`;

/** Read a Maildir (and its Maildir++ folders) with Python's mailbox.Maildir: an independent reader. */
export async function readMaildir(dir: string): Promise<StoredMessage[]> {
  const { stdout } = await run(PYTHON, ['-c', READER, dir], { maxBuffer: 512 * 1024 * 1024 });
  const list = JSON.parse(stdout) as Array<{ folder: string; subdir: string; name: string; b64: string }>;
  return list.map((m) => ({ folder: m.folder, subdir: m.subdir, name: m.name, bytes: Buffer.from(m.b64, 'base64') }));
}

export async function tempDir(prefix = 'maildir-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface SendResult {
  rcpt: number[];
  /** Reply to the end of data, or undefined if DATA was not reached. */
  data: { code: number; text: string } | undefined;
  replies: string[];
}

/** Dot-stuff and terminate a message for DATA. */
export function dataBlock(message: string | Buffer): Buffer {
  const text = Buffer.isBuffer(message) ? message.toString('latin1') : message;
  const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

/** One SMTP transaction with the raw test client (EHLO, MAIL, RCPT..., DATA). */
export async function send(port: number, from: string, to: string[], message: string | Buffer, mailParams = ''): Promise<SendResult> {
  const c = await SmtpTestClient.connect(port);
  const replies: string[] = [];
  try {
    await c.read();
    await c.command('EHLO client.test');
    const mail = await c.command(`MAIL FROM:<${from}>${mailParams}`);
    replies.push(mail.raw);
    const rcpt: number[] = [];
    for (const r of to) {
      const reply = await c.command(`RCPT TO:<${r}>`);
      replies.push(reply.raw);
      rcpt.push(reply.code);
    }
    if (!rcpt.some((code) => code === 250)) return { rcpt, data: undefined, replies };
    const go = await c.command('DATA');
    if (go.code !== 354) return { rcpt, data: { code: go.code, text: go.raw }, replies };
    c.write(dataBlock(message));
    const end = await c.read(20_000);
    replies.push(end.raw);
    await c.command('QUIT').catch(() => undefined);
    return { rcpt, data: { code: end.code, text: end.raw }, replies };
  } finally {
    c.close();
  }
}

/** The delivered bytes must be our added headers, then one Received: header, then exactly what was sent. */
export function splitDelivered(bytes: Buffer, sent: Buffer): { added: string; received: string } {
  const tail = bytes.subarray(bytes.length - sent.length);
  if (!tail.equals(sent)) throw new Error('delivered message does not end with the sent bytes');
  const head = bytes.subarray(0, bytes.length - sent.length).toString('utf8');
  const at = head.indexOf('Received: ');
  if (at < 0) throw new Error(`no Received: header in ${JSON.stringify(head)}`);
  return { added: head.slice(0, at), received: head.slice(at) };
}


export interface MaildirGateway extends TestGateway {
  /** The Maildir root (inside the test gateway's temporary directory). */
  root: string;
}

/** A test gateway on loopback with the plugin; `options` default to { root: <tmp>/mail, domains: [example.test] }. */
export async function startMaildirGateway(
  options: Partial<MaildirOptionsInput> | ((root: string) => Partial<MaildirOptionsInput>) = {},
  config: GatewayConfigInput = {},
): Promise<MaildirGateway> {
  let root = '';
  const gw = await startTestGateway(config, async (gateway, dir) => {
    root = join(dir, 'mail');
    const extra = typeof options === 'function' ? options(root) : options;
    await gateway.use(maildir, { root, domains: ['example.test'], ...extra } as MaildirOptionsInput);
  });
  return Object.assign(gw, { root });
}
