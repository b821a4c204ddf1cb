/**
 * A real DNS server for tests: Debian's dnsmasq with a test zone file (such as
 * shared/data/dns/dnsmasq-test.conf), on a loopback port chosen at run time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DnsResolver } from '../dns/resolver.js';
import type { DnsRecordType } from '../dns/answer.js';
import { startTestDnsServer } from './dns-server.js';

/** Where Debian's dnsmasq-base installs it (scripts/install-test-tools.sh). */
export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface TestDnsmasq {
  port: number;
  /** "127.0.0.1:port", for DnsResolver's `servers` */
  address: string;
  /** What dnsmasq printed so far (it logs every query). */
  readonly log: string;
  close(): Promise<void>;
}

/**
 * Start dnsmasq with `conf` (its `port=` line is dropped: the port is one found free
 * here) and resolve once it answers `ready` (a name of the zone, asked as `readyType`);
 * reject with its output if it exits or stays silent for 5 s.
 */
export async function startDnsmasq(conf: string, ready = 'example.test', readyType: DnsRecordType = 'MX'): Promise<TestDnsmasq> {
  // a port free for both UDP and TCP: the test server finds one, then lets it go
  const probe = await startTestDnsServer({});
  const port = probe.port;
  await probe.close();

  const dir = mkdtempSync(path.join(tmpdir(), 'mailgate-dnsmasq-'));
  const file = path.join(dir, 'dnsmasq.conf');
  writeFileSync(file, readFileSync(conf, 'utf8').replace(/^port=.*$/m, ''));
  const child = spawn(
    DNSMASQ,
    ['--keep-in-foreground', `--conf-file=${file}`, `--port=${port}`, `--pid-file=${path.join(dir, 'dnsmasq.pid')}`, '--log-facility=-'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`dnsmasq exited (${code}):\n${log}`))));
  exited.catch(() => {}); // only raced below; an exit after startup is not an error here

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const answering = (async () => {
    for (let i = 0; i < 50; i++) {
      try {
        await new DnsResolver({ servers: [`127.0.0.1:${port}`], timeout: 100, retries: 1, cache: false }).resolve(ready, readyType);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`dnsmasq did not answer on port ${port}:\n${log}`);
  })();
  try {
    await Promise.race([answering, exited]);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    get log() {
      return log;
    },
    close,
  };
}
