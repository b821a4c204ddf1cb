/**
 * IP lists against a real DNS server: dnsmasq with the project's test zone
 * (shared/data/dns/dnsmasq-test.conf: 127.0.0.2 listed in bl.test, 127.0.0.1 not), on a
 * loopback port chosen at run time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDnsServer } from '@mailgate/core/testing';
import { ipListSchema, listingText, queryIpLists } from '../src/dnslists.js';
import { resolverFor } from './lists-helpers.js';

const DNSMASQ = '/usr/sbin/dnsmasq';
const CONF = fileURLToPath(new URL('../../../../shared/data/dns/dnsmasq-test.conf', import.meta.url));

const missing = !existsSync(DNSMASQ) ? `${DNSMASQ} not installed` : !existsSync(CONF) ? `${CONF} not found` : '';
if (missing) console.warn(`skipping the dnsmasq DNS list test: ${missing}`);

describe.skipIf(missing !== '')(`IP lists on a real dnsmasq${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let child: ChildProcess | undefined;
  let dir = '';
  let port = 0;
  let log = '';

  beforeAll(async () => {
    // a port free for UDP and TCP: the test server finds one, then lets it go
    const probe = await startTestDnsServer({});
    port = probe.port;
    await probe.close();

    dir = mkdtempSync(path.join(tmpdir(), 'mailgate-spam-dnsmasq-'));
    const conf = path.join(dir, 'dnsmasq.conf');
    // the shared file pins port=2743; our copy uses the port picked above
    writeFileSync(conf, readFileSync(CONF, 'utf8').replace(/^port=.*$/m, `port=${port}`));
    child = spawn(DNSMASQ, ['--keep-in-foreground', `--conf-file=${conf}`, `--pid-file=${path.join(dir, 'dnsmasq.pid')}`, '--log-facility=-'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`dnsmasq exited (${code}):\n${log}`))));
    exited.catch(() => {}); // only raced below

    const ready = (async () => {
      for (let i = 0; i < 50; i++) {
        try {
          await resolverFor(`127.0.0.1:${port}`, { timeout: 100 }).resolve('mail.example.test', 'A');
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

  it('lists 127.0.0.2 with its TXT, and not 127.0.0.1', async () => {
    const resolver = resolverFor(`127.0.0.1:${port}`, { timeout: 1_000 });
    const bl = ipListSchema.parse({ zone: 'bl.test', weight: 3 });
    const listed = await queryIpLists('127.0.0.2', [bl], resolver);
    expect(listed.problems).toEqual([]);
    expect(listed.hits).toEqual([{ list: 'bl.test', zone: 'bl.test', query: '2.0.0.127.bl.test', listed: '127.0.0.2', answers: ['127.0.0.2'], weight: 3 }]);
    expect(await listingText(listed.hits[0]!, resolver)).toBe('127.0.0.2 is listed for testing');
    expect(await queryIpLists('127.0.0.1', [bl], resolver)).toEqual({ hits: [], problems: [] });
  });
});
