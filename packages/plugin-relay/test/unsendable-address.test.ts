/**
 * Finding 5 of the hostile-peer report: `"a>b"@domain` is a valid quoted local part the
 * core accepts, but the SMTP client refuses to write it into RCPT (EENVELOPE). That was
 * taken as a temporary failure of the whole transaction: every co-recipient was deferred
 * for 5 days. Now that address alone fails for good (5.1.3); the others are delivered.
 */
import { describe, expect, it } from 'vitest';
import { DEST_ZONE, message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture(DEST_ZONE);

describe('relay: an address the SMTP client cannot write', () => {
  it('"a>b"@dest.test fails permanently with 5.1.3; its co-recipient is delivered at the first attempt', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const r = await startRelayer({ mxPort: { 'mx1.dest.test': dest.port }, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } }, fx.dns.address);
    fx.cleanup.push(() => r.close());
    const replies = await sendMail(r.gw.port, 'alice@sender.test', ['"a>b"@dest.test', 'ok@dest.test'], message('quoted'));
    expect(replies.at(-1)).toMatch(/^250/);
    await waitFor(() => dest.messages.length === 1 && r.events.bounced.length > 0, 10_000, 'delivery and the failure');
    expect(dest.messages[0]!.to).toEqual(['ok@dest.test']);
    const failed = r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === '"a>b"@dest.test');
    expect(failed?.error).toMatch(/cannot send an address that contains < or >/);
    expect(r.events.deferred).toHaveLength(0);
  });

  it('a sender with < or > fails the message for good (5.1.7), not a 5-day retry', async () => {
    const dest = await startReceiver();
    fx.cleanup.push(() => dest.close());
    const r = await startRelayer({ mxPort: { 'mx1.dest.test': dest.port }, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } }, fx.dns.address);
    fx.cleanup.push(() => r.close());
    await sendMail(r.gw.port, '"s>x"@sender.test', ['ok@dest.test'], message('quoted sender'));
    const failed = await waitFor(() => r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === 'ok@dest.test'), 10_000, 'the failure');
    expect(failed.error).toMatch(/sender address .* cannot be sent/);
    expect(r.events.deferred).toHaveLength(0);
    expect(dest.messages).toHaveLength(0);
  });
});
