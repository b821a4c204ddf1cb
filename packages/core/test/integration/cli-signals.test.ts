/**
 * `mailgate serve` as a service: SIGHUP re-reads the TLS certificate (a renewal) and
 * never ends the process; a plugin's stray promise rejection is logged, not fatal;
 * start and stop are logged with the version. Run as a child process, as an admin runs it.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, generateTestCertificate, SmtpTestClient, startMailgate, type MailgateProcess } from '@mailgate/core/testing';

let mg: MailgateProcess | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await mg?.kill();
  mg = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-signals-'));
  dirs.push(dir);
  return dir;
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${mg?.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The common name of the certificate the server presents on the implicit-TLS port. */
function presentedName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.once('error', reject);
  });
}

describe('mailgate serve and signals', () => {
  it('SIGHUP re-reads the TLS key and certificate; a broken pair keeps the current one', async () => {
    const dir = workDir();
    const [first, second] = await Promise.all([generateTestCertificate('first.test'), generateTestCertificate('second.test')]);
    copyFileSync(first.keyFile, join(dir, 'key.pem'));
    copyFileSync(first.certFile, join(dir, 'cert.pem'));
    const port = await freePort();
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `hostname: mx.example.test\nlisten:\n  - { host: 127.0.0.1, port: ${port}, tls: implicit }\ntls: { key: ./key.pem, cert: ./cert.pem }\nspool: { dir: ./spool }\nlog: { format: json }\n`,
    );
    mg = await startMailgate(['serve', '-c', join(dir, 'gateway.yaml')], { waitFor: '"msg":"started"' });
    expect(mg.output()).toMatch(/"msg":"started".*"version":"\d+\.\d+\.\d+"/);
    expect(await presentedName(port)).toBe('first.test');

    copyFileSync(second.keyFile, join(dir, 'key.pem'));
    copyFileSync(second.certFile, join(dir, 'cert.pem'));
    mg.child.kill('SIGHUP');
    await until(() => mg!.output().includes('TLS key and certificate reloaded'), 'the reload');
    expect(await presentedName(port)).toBe('second.test');

    // a key that does not match the certificate: logged, the working pair stays
    copyFileSync(first.keyFile, join(dir, 'key.pem'));
    mg.child.kill('SIGHUP');
    await until(() => mg!.output().includes('TLS reload failed'), 'the failed reload');
    expect(mg.output()).toContain('not usable together');
    expect(await presentedName(port)).toBe('second.test');
    expect(mg.gone).toBe(false);

    const exit = await mg.stop();
    expect(exit.code).toBe(0);
    expect(mg.output()).toMatch(/"msg":"stopped".*"signal":"SIGTERM"/);
  }, 30_000);

  it('SIGHUP while the gateway is still loading does not end it', async () => {
    const dir = workDir();
    const port = await freePort();
    // a plugin whose setup takes a while: the gateway is loading when the SIGHUP comes
    writeFileSync(
      join(dir, 'slow.js'),
      `const plugin = { name: 'slow', async setup() { await new Promise((r) => setTimeout(r, 800)); } };
Object.defineProperty(plugin, Symbol.for('mailgate.plugin'), { value: true });
export default Object.freeze(plugin);
`,
    );
    writeFileSync(join(dir, 'gateway.yaml'), `hostname: mx.example.test\nlisten:\n  - { host: 127.0.0.1, port: ${port} }\nspool: { dir: ./spool }\nplugins:\n  - use: ./slow.js\n`);
    mg = await startMailgate(['serve', '-c', join(dir, 'gateway.yaml')], { waitFor: false });
    // (from 200 ms: before that Node itself is still starting, before any code of ours runs)
    for (const at of [200, 400, 600]) setTimeout(() => mg?.child.kill('SIGHUP'), at);
    await until(() => mg!.output().includes('listening') || mg!.gone, 'listening');
    expect(mg.gone).toBe(false);
    expect((await mg.stop()).code).toBe(0);
  }, 30_000);

  it('SIGHUP without tls: says there is nothing to reload and keeps serving', async () => {
    const dir = workDir();
    const port = await freePort();
    writeFileSync(join(dir, 'gateway.yaml'), `hostname: mx.example.test\nlisten:\n  - { host: 127.0.0.1, port: ${port} }\nspool: { dir: ./spool }\n`);
    mg = await startMailgate(['serve', '-c', join(dir, 'gateway.yaml')]);
    mg.child.kill('SIGHUP');
    await until(() => mg!.output().includes('nothing to reload'), 'the SIGHUP line');
    const c = await SmtpTestClient.connect(port);
    expect((await c.read()).code).toBe(220);
    expect((await c.command('QUIT')).code).toBe(221);
    c.close();
    expect((await mg.stop()).code).toBe(0);
  }, 30_000);

  it('a plugin promise rejected with nobody listening is logged with its stack; the gateway goes on', async () => {
    const dir = workDir();
    const port = await freePort();
    writeFileSync(
      join(dir, 'careless.js'),
      `const PLUGIN = Symbol.for('mailgate.plugin');
const plugin = {
  name: 'careless',
  setup({ tap }) {
    tap('rcpt', () => {
      // background work nobody awaits, failing later
      Promise.reject(new Error('background lookup failed'));
      return undefined;
    });
  },
};
Object.defineProperty(plugin, PLUGIN, { value: true });
export default Object.freeze(plugin);
`,
    );
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `hostname: mx.example.test\nlisten:\n  - { host: 127.0.0.1, port: ${port} }\nspool: { dir: ./spool }\nlog: { format: json }\nplugins:\n  - use: ./careless.js\n`,
    );
    mg = await startMailgate(['serve', '-c', join(dir, 'gateway.yaml')]);
    for (let i = 0; i < 2; i++) {
      const c = await SmtpTestClient.connect(port);
      await c.read();
      await c.command('HELO client.test');
      await c.command('MAIL FROM:<a@client.test>');
      await c.command('RCPT TO:<b@example.test>');
      expect((await c.command('QUIT')).code).toBe(221);
      c.close();
    }
    await until(() => mg!.output().split('unhandled promise rejection').length > 2, 'two logged rejections');
    expect(mg.output()).toContain('background lookup failed');
    expect(mg.output()).toMatch(/"stack":"Error: background lookup failed\\n\s+at /);
    expect(mg.gone).toBe(false);
    expect((await mg.stop()).code).toBe(0);
  }, 30_000);
});
