/**
 * A gateway started while another one still owns the queue directory (a restart right
 * after kill -9, or while the old one drains its sessions) refuses to relay (451) — but
 * only until the owner is gone: it looks again every few seconds and takes the queue
 * over. It once refused until it was restarted by hand (adversarial run).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PID_FILE } from '../src/cli.js';
import { DEST_ZONE, message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture(DEST_ZONE);

describe('relay: a queue owned by a gateway on its way out', () => {
  it('451 while the owner lives; taken over a few seconds after it is gone, and the mail then flows', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const queueDir = mkdtempSync(join(tmpdir(), 'mg-owner-gone-'));
    fx.cleanup.push(async () => rmSync(queueDir, { recursive: true, force: true }));
    mkdirSync(queueDir, { recursive: true, mode: 0o700 });
    // the "old gateway": a process that lives 1.5 s more
    const old = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 1500)']);
    const gone = new Promise((r) => old.once('exit', r));
    writeFileSync(join(queueDir, PID_FILE), `${old.pid}\n`);
    const r = await startRelayer({ queueDir, mxPort: { 'mx1.dest.test': dest.port } }, fx.dns.address);
    fx.cleanup.push(() => r.close());

    // (sendMail throws with the reply when the end of data is not answered 250)
    const attempt = (subject: string) => sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message(subject)).then(() => '250', (error: Error) => error.message);
    expect(await attempt('while owned')).toMatch(/expected 250, got \{"code":451/);
    await gone;
    // within a couple of rechecks the queue is ours
    await waitFor(async () => (await attempt('after')) === '250', 10_000, 'relaying to work again');
    await waitFor(() => dest.messages.length === 1, 10_000, 'the delivery');
  }, 30_000);
});
