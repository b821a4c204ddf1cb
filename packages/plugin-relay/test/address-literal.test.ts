/**
 * Finding 9 of the hostile-peer report: mail to `x@[127.0.0.1]` (a DSN to such a sender)
 * was looked up in DNS as the name "[127.0.0.1]" and deferred for days. As Postfix does,
 * an address literal is delivered to that address directly, no DNS, subject to the
 * "loops back to myself" check: a loopback literal is refused (5.4.6) unless allowed.
 */
import { describe, expect, it } from 'vitest';
import { message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture({});

async function setup(allowLoopbackMx: boolean, literal: string) {
  const dest = await startReceiver();
  fx.cleanup.push(() => dest.close());
  const r = await startRelayer({ allowLoopbackMx, mxPort: { [literal]: dest.port }, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } }, fx.dns.address);
  fx.cleanup.push(() => r.close());
  return { dest, r };
}

describe('relay: address literals', () => {
  it('x@[127.0.0.1] is delivered to 127.0.0.1 without a DNS lookup', async () => {
    const { dest, r } = await setup(true, '[127.0.0.1]');
    const before = fx.dns.queries.length;
    await sendMail(r.gw.port, 'alice@sender.test', ['x@[127.0.0.1]'], message('literal'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.to).toEqual(['x@[127.0.0.1]']);
    expect(fx.dns.queries.slice(before).filter((q) => q.name.includes('['))).toEqual([]);
  });

  it('a loopback literal is this host: refused with 5.4.6 by default, not deferred', async () => {
    const { dest, r } = await setup(false, '[127.0.0.1]');
    await sendMail(r.gw.port, 'alice@sender.test', ['x@[127.0.0.1]'], message('literal loop'));
    const failed = await waitFor(() => r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === 'x@[127.0.0.1]'), 10_000, 'the failure');
    expect(failed.error).toBe('mail for [127.0.0.1] loops back to myself');
    expect(dest.messages).toHaveLength(0);
    expect(r.events.deferred).toHaveLength(0);
  });

  it('an IPv6 literal [IPv6:::1] is parsed as the address ::1 (and so refused as this host)', async () => {
    const { r } = await setup(false, '[ipv6:::1]');
    await sendMail(r.gw.port, 'alice@sender.test', ['x@[IPv6:::1]'], message('literal v6'));
    const failed = await waitFor(() => r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === 'x@[IPv6:::1]'), 10_000, 'the failure');
    expect(failed.error).toBe('mail for [ipv6:::1] loops back to myself');
  });
});
