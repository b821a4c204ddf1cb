/**
 * The README's quick start, as a new user runs it: the mailgate command with the
 * example config, a real client (Python's smtplib), and the delivered file read back
 * with an independent Maildir reader (Python's mailbox module).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startMailgate, type MailgateProcess } from '@mailgate/core/testing';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const PYTHON = '/usr/bin/python3';
const built = existsSync(join(ROOT, 'packages/core/dist/cli.js')) && existsSync(join(ROOT, 'packages/plugin-maildir/dist/index.js'));

function python(script: string, ...args: string[]) {
  return spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe.skipIf(!built)('the quick start (examples/quickstart/gateway.yaml)', () => {
  let mailgate: MailgateProcess | undefined;
  let port: number;
  let maildirs: string;

  beforeAll(async () => {
    port = await freePort();
    maildirs = mkdtempSync(join(tmpdir(), 'mg-quickstart-'));
    mailgate = await startMailgate(['serve', '-c', 'examples/quickstart/gateway.yaml', '--listen', `127.0.0.1:${port}`], {
      cwd: ROOT,
      env: { MAILDIR_ROOT: maildirs },
    });
  });

  afterAll(async () => {
    await mailgate?.stop();
    rmSync(maildirs, { recursive: true, force: true });
  });

  it('delivers a message from smtplib into example.test/alice/new, byte for byte after the trace headers', () => {
    const body = 'From: bob@example.org\r\nTo: alice@example.test\r\nSubject: quick start\r\n\r\nHello Alice.\r\n';
    const send = python(
      'import smtplib,sys; s=smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.sendmail("bob@example.org", ["alice@example.test"], sys.argv[2].encode()); s.quit()',
      String(port),
      body,
    );
    expect(send.stderr).toBe('');
    expect(send.status).toBe(0);
    const inbox = join(maildirs, 'example.test', 'alice');
    expect(readdirSync(join(inbox, 'new'))).toHaveLength(1);
    const read = python(
      'import mailbox,sys; box=mailbox.Maildir(sys.argv[1], create=False); [m]=list(box); print(m["Subject"]); print(m["Delivered-To"]); print(m["Return-Path"]); sys.stdout.write(m.get_payload())',
      inbox,
    );
    expect(read.status).toBe(0);
    expect(read.stdout).toBe('quick start\nalice@example.test\n<bob@example.org>\nHello Alice.\n');
  });

  it('refuses to relay to other domains (no open relay)', () => {
    const send = python(
      'import smtplib,sys\ns=smtplib.SMTP("127.0.0.1", int(sys.argv[1]))\ntry:\n  s.sendmail("bob@example.org", ["carol@elsewhere.test"], b"Subject: x\\r\\n\\r\\nx\\r\\n")\nexcept smtplib.SMTPRecipientsRefused as e:\n  print(e.recipients["carol@elsewhere.test"][0])',
      String(port),
    );
    expect(send.stdout.trim()).toBe('554');
  });

  it('logs one human-readable line per transaction and per session (the first test\'s message)', async () => {
    const line = /INFO\s+transaction .*from=bob@example\.org .*result=accepted/;
    const session = /INFO\s+session closed .*reason=quit .*commands="?ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5/;
    // spawnSync blocked this process's event loop: let the child's output arrive (a loaded CI machine may take seconds).
    for (let i = 0; i < 500 && !(line.test(mailgate!.output()) && session.test(mailgate!.output())); i++) await new Promise((r) => setTimeout(r, 20));
    expect(mailgate!.output()).toMatch(line);
    expect(mailgate!.output()).toMatch(session);
  });
});
