/**
 * The resolver against a real DNS server: dnsmasq with the project's test zone
 * (shared/data/dns/dnsmasq-test.conf), on a loopback port chosen at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsError, DnsResolver } from '../../src/dns/index.js';
import { startTestDnsServer } from '../../src/testing/dns-server.js';

const DNSMASQ = '/usr/sbin/dnsmasq';
const sharedData =
  process.env.MAILGATE_SHARED_DATA ?? path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../../shared/data');
const CONF = path.join(sharedData, 'dns', 'dnsmasq-test.conf');

const missing = !existsSync(DNSMASQ) ? `${DNSMASQ} not installed` : !existsSync(CONF) ? `${CONF} not found` : '';
if (missing) console.warn(`skipping the dnsmasq DNS test: ${missing}`);

describe.skipIf(missing !== '')(`real dnsmasq${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let child: ChildProcess | undefined;
  let dir = '';
  let resolver: DnsResolver;
  let log = '';

  beforeAll(async () => {
    // a port free for both UDP and TCP: the test server finds one, then lets it go
    const probe = await startTestDnsServer({});
    const port = probe.port;
    await probe.close();

    dir = mkdtempSync(path.join(tmpdir(), 'mailgate-dnsmasq-'));
    const conf = path.join(dir, 'dnsmasq.conf');
    // the shared file pins port=2743; our copy leaves the port to the command line
    writeFileSync(conf, readFileSync(CONF, 'utf8').replace(/^port=.*$/m, ''));
    child = spawn(
      DNSMASQ,
      ['--keep-in-foreground', `--conf-file=${conf}`, `--port=${port}`, `--pid-file=${path.join(dir, 'dnsmasq.pid')}`, '--log-facility=-'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`dnsmasq exited (${code}):\n${log}`))),
    );
    exited.catch(() => {}); // only raced below; an exit after startup is not an error here

    resolver = new DnsResolver({ servers: [`127.0.0.1:${port}`], timeout: 500, retries: 1, cache: false });
    // ready when it answers; give up after 5 s
    const ready = (async () => {
      for (let i = 0; i < 50; i++) {
        try {
          await new DnsResolver({ servers: [`127.0.0.1:${port}`], timeout: 100, retries: 1 }).resolveMx('example.test');
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error(`dnsmasq did not answer on port ${port}:\n${log}`);
    })();
    await Promise.race([ready, exited]);
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers MX and the SPF TXT of example.test', async () => {
    expect(await resolver.resolveMx('example.test')).toEqual([{ exchange: 'mail.example.test', priority: 10 }]);
    expect(await resolver.resolveTxt('example.test')).toEqual([['v=spf1 ip4:192.0.2.0/24 mx -all']]);
    expect(await resolver.resolve4('mail.example.test')).toEqual(['192.0.2.25']);
  });

  it('answers the RFC 5782 DNSBL test entry and NXDOMAIN for an unlisted address', async () => {
    expect(await resolver.resolve4('2.0.0.127.bl.test')).toEqual(['127.0.0.2']);
    expect(await resolver.resolveTxt('2.0.0.127.bl.test')).toEqual([['127.0.0.2 is listed for testing']]);
    const err = await resolver.resolve4('1.0.0.127.bl.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect(err).toMatchObject({ code: 'NXDOMAIN', temporary: false });
  });
});
