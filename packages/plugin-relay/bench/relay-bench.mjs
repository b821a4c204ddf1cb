#!/usr/bin/env node
/**
 * Relay benchmarks (needs `npx turbo run build`):
 *
 *   node packages/plugin-relay/bench/relay-bench.mjs throughput [N=2000] [CONCURRENCY=20]
 *     messages/s from the first accepted message to the last one delivered into
 *     Postfix's smtp-sink (gateway + relay plugin in this process, clients over loopback).
 *   node packages/plugin-relay/bench/relay-bench.mjs memory [N=100000]
 *     memory of the relay's in-memory queue index with N queued messages on disk
 *     (files are written without fsync here: it measures the index, not the disk).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, definePlugin, silentLogger, DnsResolver } from '@mailgate/core';
import relay, { relayHooks, relayQueue } from '@mailgate/plugin-relay';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

const [mode = 'throughput', nArg, cArg] = process.argv.slice(2);

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

const allow = definePlugin({ name: 'allow', setup({ tap }) { tap('rcpt', (_s, _t, r) => { r.data.relayAllowed = true; }); } });

if (mode === 'memory') {
  const n = Number(nArg ?? 100_000);
  const dir = await mkdtemp(join(tmpdir(), 'relay-mem-'));
  const msg = join(dir, 'msg');
  await mkdir(msg, { recursive: true });
  const body = Buffer.from('Subject: bench\r\n\r\n' + 'x'.repeat(1000) + '\r\n');
  const later = Date.now() + 3_600_000;
  let t = Date.now();
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, async (_, k) => {
      const id = `BENCH${String(i + k).padStart(10, '0')}`;
      const entry = { version: 1, id, sender: 'a@sender.test', created: Date.now(), nextAttempt: later + ((i + k) % 1000), attempts: 1, size: body.length, bodyType: '7BIT', smtputf8: false, kind: 'message',
        recipients: [{ address: `u${i + k}@d${(i + k) % 500}.test`, domain: `d${(i + k) % 500}.test`, status: 'pending', attempts: 1, lastError: '451 4.7.1 try later' }] };
      await writeFile(join(msg, `${id}.eml`), body);
      await writeFile(join(msg, `${id}.json`), JSON.stringify(entry));
    }));
  }
  console.log(`wrote ${n} messages in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  global.gc?.();
  const before = process.memoryUsage();
  t = Date.now();
  const gateway = createGateway({ hostname: 'relay.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: join(dir, 'spool') } }, { logger: silentLogger, dns: new DnsResolver({ servers: ['127.0.0.1:9'] }) });
  await gateway.use(relay, { queueDir: dir });
  // The queue is scanned once the gateway listens (mailgate check never loads it).
  await gateway.listen();
  await relayQueue(gateway).ready;
  const loadMs = Date.now() - t;
  global.gc?.();
  const after = process.memoryUsage();
  const mb = (x) => (x / 1048576).toFixed(1);
  console.log(JSON.stringify({ scenario: 'relay_queue_memory', messages: n, scheduled: relayQueue(gateway).scheduled, loadSeconds: loadMs / 1000,
    heapUsedMB: mb(after.heapUsed), heapDeltaMB: mb(after.heapUsed - before.heapUsed), rssMB: mb(after.rss), rssDeltaMB: mb(after.rss - before.rss),
    bytesPerMessage: Math.round((after.heapUsed - before.heapUsed) / n) }));
  await gateway.close(100);
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

// throughput
const n = Number(nArg ?? 2000);
const conc = Number(cArg ?? 20);
const dir = await mkdtemp(join(tmpdir(), 'relay-tp-'));
const sinkPort = await freePort();
const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
for (let i = 0; i < 100; i++) {
  const ok = await new Promise((r) => { const s = connect(sinkPort, '127.0.0.1'); s.once('connect', () => (s.destroy(), r(true))); s.once('error', () => r(false)); });
  if (ok) break;
  await new Promise((r) => setTimeout(r, 50));
}
const gateway = createGateway({ hostname: 'relay.test', listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: join(dir, 'spool') }, limits: { maxConnections: 1000 } },
  { logger: silentLogger, dns: new DnsResolver({ servers: ['127.0.0.1:9'] }) });
let delivered = 0;
let done;
const allDone = new Promise((r) => (done = r));
await gateway.use(allow);
await gateway.use(relay, { queueDir: join(dir, 'queue'), smarthost: { host: `127.0.0.1:${sinkPort}`, tls: 'none' }, concurrency: 20, perDestination: 20 });
relayHooks(gateway).delivered.tap('bench', (e) => { delivered += e.recipients.length; if (delivered >= n) done(); });
const [addr] = await gateway.listen();
const body = 'From: a@sender.test\r\nTo: b@dest.test\r\nSubject: bench\r\n\r\n' + 'Lorem ipsum dolor sit amet. '.repeat(40) + '\r\n';
const start = performance.now();
let next = 0;
let acceptedAt = 0;
async function client() {
  const c = new SMTPConnection({ host: '127.0.0.1', port: addr.port, ignoreTLS: true, logger: false });
  c.on('error', () => undefined);
  await new Promise((r, j) => c.connect((e) => (e ? j(e) : r())));
  while (next < n) {
    const i = next++;
    await new Promise((r, j) => c.send({ from: 'a@sender.test', to: [`u${i}@dest.test`] }, body, (e) => (e ? j(e) : r())));
  }
  c.quit();
}
await Promise.all(Array.from({ length: conc }, client));
acceptedAt = performance.now();
await allDone;
const end = performance.now();
console.log(JSON.stringify({ scenario: 'relay_to_smtp_sink', messages: n, clients: conc, acceptSeconds: +((acceptedAt - start) / 1000).toFixed(2),
  totalSeconds: +((end - start) / 1000).toFixed(2), messagesPerSecond: Math.round(n / ((end - start) / 1000)), rssMB: +(process.memoryUsage().rss / 1048576).toFixed(1) }));
await gateway.close(1000);
sink.kill('SIGKILL');
await rm(dir, { recursive: true, force: true });
process.exit(0);
