/**
 * `mailgate queue` as scripts use it (postsuper-style): several ids per command, each
 * acted on and reported, exit 1 if one was not found; `-` for ids on stdin; `delete
 * ALL`; the transaction id of the client's `250 … queued as` instead of a queue id;
 * unknown options and sub-commands refused (exit 2) before anything is done. And
 * `mailgate check` leaves the queue directory alone. The real CLI on real queue files.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QueueStore, type QueueEntry } from '../src/store.js';
import { built, cliConfig, cliWorkdir, mailgate, queuedEntry, serveWithUmask } from './cli-helpers.js';
import { closedPort, listening, message, sendMail, useRelayFixture, waitFor } from './helpers.js';

const { cleanup } = useRelayFixture({});

function entry(id: string, receivedTx: string, status: 'pending' | 'held' = 'pending'): QueueEntry {
  return queuedEntry(id, { receivedTx }, { status });
}

/** A config with a queue holding messages A…, B…, C… (received in transactions SESS1.1, .2, .3), no gateway running. */
async function queueOfThree(): Promise<{ config: string; store: QueueStore; ids: string[]; queued: () => Promise<string[]> }> {
  const dir = await cliWorkdir(cleanup);
  const config = await cliConfig(dir, await closedPort(), await closedPort());
  const store = new QueueStore(join(dir, 'queue'));
  await store.init();
  const ids = ['AAAAAAAAAA01', 'BBBBBBBBBB02', 'CCCCCCCCCC03'];
  for (const [i, id] of ids.entries()) await store.add(entry(id, `SESS1.${i + 1}`, 'held'), Buffer.from(`Subject: m${i}\r\n\r\nbody\r\n`));
  const queued = async () => (await readdir(store.msgDir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
  return { config, store, ids, queued };
}

describe.skipIf(!built)('mailgate queue with several ids (no gateway running)', () => {
  it('delete ID ID: both deleted, each reported, exit 0', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'delete', q.ids[0]!, q.ids[2]!, '-c', q.config]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`delete ${q.ids[0]}: ok\ndelete ${q.ids[2]}: ok\n`);
    expect(await q.queued()).toEqual([q.ids[1]]);
  });

  it('delete with an id that is not queued: the others are deleted, the missing one is named, exit 1', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'delete', q.ids[0]!, 'ZZZZZZZZZZ99', q.ids[1]!, '-c', q.config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ZZZZZZZZZZ99 not found');
    expect(r.stdout).toBe(`delete ${q.ids[0]}: ok\ndelete ${q.ids[1]}: ok\n`);
    expect(await q.queued()).toEqual([q.ids[2]]);
  });

  it('retry ID ID: held recipients of both become pending and due', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'retry', q.ids[0]!, q.ids[1]!, '-c', q.config]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    for (const id of q.ids.slice(0, 2)) {
      const e = (await q.store.read(id))!;
      expect(e.recipients[0]!.status).toBe('pending');
      expect(e.nextAttempt).toBeLessThanOrEqual(Date.now());
    }
    expect((await q.store.read(q.ids[2]!))!.recipients[0]!.status).toBe('held');
  });

  it('delete -: ids from stdin, one per line or separated by spaces', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'delete', '-', '-c', q.config], `${q.ids[0]}\n${q.ids[1]} ${q.ids[2]}\n`);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(await q.queued()).toEqual([]);
  });

  it('delete ALL empties the queue', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'delete', 'ALL', '-c', q.config]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(await q.queued()).toEqual([]);
    expect(await mailgate(['queue', 'delete', 'ALL', '-c', q.config])).toMatchObject({ code: 0, stdout: 'delete ALL: the queue is empty\n' });
  });

  it('the transaction id the client was told works for show, retry and delete', async () => {
    const q = await queueOfThree();
    const shown = await mailgate(['queue', 'show', 'SESS1.2', '-c', q.config]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`"id": "${q.ids[1]}"`);
    expect(shown.stdout).toContain('Subject: m1');
    const retried = await mailgate(['queue', 'retry', 'SESS1.2', '-c', q.config]);
    expect(retried).toMatchObject({ code: 0, stdout: `retry ${q.ids[1]} (tx SESS1.2): ok (due at the next start of the gateway)\n` });
    const deleted = await mailgate(['queue', 'delete', 'SESS1.2', 'SESS1.9', '-c', q.config]);
    expect(deleted.code).toBe(1);
    expect(deleted.stdout).toBe(`delete ${q.ids[1]} (tx SESS1.2): ok\n`);
    expect(deleted.stderr).toContain('SESS1.9 not found');
    expect(await q.queued()).toEqual([q.ids[0], q.ids[2]]);
  });

  it('show ID ID shows both; a missing one makes it exit 1', async () => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', 'show', q.ids[0]!, q.ids[2]!, 'ZZZZZZZZZZ99', '-c', q.config]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Subject: m0');
    expect(r.stdout).toContain('Subject: m2');
    expect(r.stderr).toContain('ZZZZZZZZZZ99 not found');
  });

  it.each([
    [['list', '--json'], /^mailgate queue: unknown option --json\n/],
    [['delete', '--force', 'AAAAAAAAAA01'], /^mailgate queue: unknown option --force\n/],
    [['bogus'], /^mailgate queue: unknown queue command: bogus\n\nusage: mailgate queue/],
    [['hold', 'AAAAAAAAAA01'], /^mailgate queue: unknown queue command: hold\n\nusage: mailgate queue/],
    [[], /^mailgate queue: missing queue command\n\nusage: mailgate queue/],
    [['delete'], /expected a queue id/],
    [['delete', 'AAAAAAAAAA01', '../../etc/passwd'], /not a queue id or transaction id: "\.\.\/\.\.\/etc\/passwd"/],
    [['retry', 'ALL'], /not a queue id or transaction id: "ALL"/],
    [['flush', 'AAAAAAAAAA01'], /mailgate queue flush: unexpected argument "AAAAAAAAAA01"/],
  ])('queue %j: a usage error on stderr, exit 2, nothing done', async (args, error) => {
    const q = await queueOfThree();
    const r = await mailgate(['queue', ...args, '-c', q.config]);
    expect(r.stderr).toMatch(error);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(await q.queued()).toEqual(q.ids);
  });
});

describe.skipIf(!built)('mailgate queue with several ids (gateway running)', () => {
  it('delete QUEUE-ID TX-ID MISSING: the two found are deleted by the gateway, exit 1', async () => {
    const dir = await cliWorkdir(cleanup);
    const port = await closedPort();
    const config = await cliConfig(dir, port, await closedPort());
    serveWithUmask(config, '022', cleanup);
    await listening(port);
    const txs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const replies = await sendMail(port, 'alice@sender.test', [`r${i}@dest.test`], message(`run${i}`));
      txs.push(/queued as (\S+)/.exec(replies.at(-1)!)![1]!);
    }
    const store = new QueueStore(join(dir, 'queue'));
    const byTx = new Map<string, string>();
    for (const id of await store.scan(false)) byTx.set((await store.read(id))!.receivedTx!, id);
    expect([...byTx.keys()].sort()).toEqual([...txs].sort());

    const r = await mailgate(['queue', 'delete', byTx.get(txs[0]!)!, txs[1]!, 'ZZZZZZZZZZ99', '-c', config]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`delete ${byTx.get(txs[0]!)}: ok\ndelete ${byTx.get(txs[1]!)} (tx ${txs[1]}): ok\n`);
    expect(r.stderr).toBe('mailgate queue delete: ZZZZZZZZZZ99 not found\n');
    await waitFor(async () => (await store.scan(false)).length === 1, 5_000, 'two deleted');
    expect(await store.scan(false)).toEqual([byTx.get(txs[2]!)]);
  });
});

describe.skipIf(!built)('mailgate check and the queue directory', () => {
  it('creates nothing: no queue directory, no msg/ tmp/ ctl/', async () => {
    const dir = await cliWorkdir(cleanup);
    const config = await cliConfig(dir, await closedPort(), await closedPort(), './var/queue');
    const r = await mailgate(['check', '-c', config]);
    expect(r).toMatchObject({ code: 0 });
    expect(existsSync(join(dir, 'var'))).toBe(false);
  });

  it('still reports a queue directory that cannot be made', async () => {
    const dir = await cliWorkdir(cleanup);
    await writeFile(join(dir, 'afile'), 'not a directory');
    const config = await cliConfig(dir, await closedPort(), await closedPort(), './afile/queue');
    const r = await mailgate(['check', '-c', config]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('afile is not a directory');
  });
});
