import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@mailgate/core/testing';

const script = fileURLToPath(new URL('../server.js', import.meta.url));

describe('examples/embedded', () => {
  let child: ChildProcess;
  let port: number;
  let output = '';

  beforeAll(async () => {
    port = await freePort();
    child = spawn(process.execPath, [script], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 15_000;
    while (!output.includes('listening on') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain('listening on');
  });

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  const transport = () => nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });

  it('accepts mail for its domain and hands it to the program', async () => {
    const info = await transport().sendMail({ from: 'alice@example.org', to: 'bob@embedded.test', subject: 'Embedded hello', text: 'hi' });
    expect(info.accepted).toEqual(['bob@embedded.test']);
    const deadline = Date.now() + 5_000;
    while (!output.includes('Embedded hello') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(output).toMatch(/from <alice@example\.org> to <bob@embedded\.test>: Embedded hello/);
  });

  it('refuses a blocked sender and unknown domains', async () => {
    await expect(transport().sendMail({ from: 'x@spam.test', to: 'bob@embedded.test', text: 'x' })).rejects.toThrow(/550/);
    await expect(transport().sendMail({ from: 'alice@example.org', to: 'bob@elsewhere.test', text: 'x' })).rejects.toThrow(/554 5\.7\.1/);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
