/**
 * `mailgate queue delete` while the message is in a delivery attempt that then fails for
 * now. The delete waits for the attempt; it once ran after the next pump() had started the
 * (already due) message again, which found its body gone and wrote its envelope back: a
 * body-less ghost retried until maxAge and then bounced to the sender (adversarial run).
 * After "delete … ok" the message must be gone for good. The real CLI, a real next hop.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { definePlugin, accept, tempfail } from '@mailgate/core';
import { startTestGateway } from '@mailgate/core/testing';
import { built, cliWorkdir, mailgate, serveWithUmask } from './cli-helpers.js';
import { closedPort, listening, message, sendMail, useRelayFixture, waitFor } from './helpers.js';

const { cleanup } = useRelayFixture({});

describe.skipIf(!built)('mailgate queue delete during a delivery attempt', () => {
  it('the message is gone for good once the attempt ends: no ghost envelope, no further attempt, no bounce', async () => {
    // a next hop that takes 1.5 s over the message and then says "later"
    let attempts = 0;
    const slow = await startTestGateway({ hostname: 'slow.test' }, (g) =>
      g.use(
        definePlugin({
          name: 'slow-451',
          setup({ tap }) {
            tap('claim', () => accept());
            tap('queue', async () => {
              attempts++;
              await new Promise((r) => setTimeout(r, 1_500));
              return tempfail('try later');
            }, { timeout: 10_000 });
          },
        }),
      ),
    );
    cleanup.push(() => slow.close());
    const dir = await cliWorkdir(cleanup);
    const port = await closedPort();
    const config = join(dir, 'gateway.yaml');
    // retries every 200 ms: the message is due again before the slow attempt ends
    await writeFile(
      config,
      `hostname: relay.test\nlisten:\n  - { host: 127.0.0.1, port: ${port} }\nspool: { dir: ./spool }\nlog: { level: info, format: json }\nshutdownTimeout: 1s\nplugins:\n  - use: ./relay-allow.js\n  - use: "@mailgate/plugin-relay"\n    with:\n      queueDir: ./queue\n      smarthost: { host: "127.0.0.1:${slow.port}" }\n      retry: { schedule: [200ms], maxAge: 1h, jitter: 0 }\n      controlPoll: 100ms\n`,
    );
    const gw = serveWithUmask(config, '022', cleanup);
    await listening(port);
    const replies = await sendMail(port, 'alice@sender.test', ['bob@dest.test'], message('ghost'));
    const tx = /queued as (\S+)/.exec(replies.at(-1)!)![1]!;
    await waitFor(() => attempts === 1, 10_000, 'the attempt to start');

    const r = await mailgate(['queue', 'delete', tx, '-c', config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^delete \S+ \(tx \S+\): ok\n$/);

    // the attempt ends (451) and the delete it waited for runs; then nothing may come back
    await waitFor(() => gw.output().includes('"msg":"relay: deferred"'), 10_000, 'the end of the attempt');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await readdir(join(dir, 'queue', 'msg'))).toEqual([]);
    expect(attempts).toBe(1);
    expect(gw.output()).not.toContain('ENOENT');
    expect(gw.output()).not.toContain('"msg":"relay: bounced"');
    expect(existsSync(join(dir, 'queue', 'msg'))).toBe(true);
  }, 30_000);
});
