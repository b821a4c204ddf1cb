/**
 * Finding 6 of the hostile-peer report: a message received with SMTPUTF8 for a non-ASCII
 * recipient went to a server that does not offer SMTPUTF8, raw UTF-8 in RCPT and no
 * SMTPUTF8 on MAIL, and was logged as sent. RFC 6531 §3.4: such a message must not be
 * sent there; as Postfix, its recipients fail with 5.6.7. A server that offers it gets
 * SMTPUTF8 on MAIL FROM, also when the addresses are ASCII and only the header needs it.
 * A message whose envelope and header are all ASCII needs nothing: it goes anywhere.
 */
import { describe, expect, it } from 'vitest';
import { DEST_ZONE, message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture(DEST_ZONE);

async function setup(peerOffersSmtpUtf8: boolean) {
  const dest = await startReceiver({ config: { smtp: { smtputf8: peerOffersSmtpUtf8 } } });
  fx.cleanup.push(() => dest.close());
  const r = await startRelayer({ mxPort: { 'mx1.dest.test': dest.port }, retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 } }, fx.dns.address);
  fx.cleanup.push(() => r.close());
  return { dest, r };
}

const failureOf = (r: Awaited<ReturnType<typeof setup>>['r'], address: string) => r.events.bounced.flatMap((e) => e.recipients).find((x) => x.address === address);

describe('relay: SMTPUTF8 (RFC 6531)', () => {
  it('a peer without SMTPUTF8: the SMTPUTF8 message is not sent; every recipient fails with 5.6.7', async () => {
    const { dest, r } = await setup(false);
    await sendMail(r.gw.port, 'alice@sender.test', ['été@dest.test', 'bob@dest.test'], message('utf8'), { mail: 'SMTPUTF8' });
    const failed = await waitFor(() => failureOf(r, 'été@dest.test') && failureOf(r, 'bob@dest.test'), 10_000, 'the failures');
    expect(failed.error).toMatch(/^554 5\.6\.7 SMTPUTF8 is required, but was not offered by host mx1\.dest\.test\[127\.0\.0\.1\]:\d+$/);
    expect(dest.rcptLog).toEqual([]);
    expect(dest.messages).toHaveLength(0);
    expect(r.events.deferred).toHaveLength(0);
  });

  it('a peer without SMTPUTF8 still gets mail that does not need it', async () => {
    const { dest, r } = await setup(false);
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('ascii'));
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.smtputf8).toBe(false);
  });

  it('a peer without SMTPUTF8 gets a message sent with SMTPUTF8 whose envelope and header are all ASCII (nothing needs it, as in Postfix)', async () => {
    const { dest, r } = await setup(false);
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('plain ascii', 'Bodies may hold 8-bit text: caf\u00e9.'), { mail: 'SMTPUTF8' });
    await waitFor(() => dest.messages.length === 1, 10_000, 'delivery');
    expect(dest.messages[0]!.smtputf8).toBe(false);
    expect(r.events.bounced).toHaveLength(0);
  });

  it('a peer with SMTPUTF8 gets it on MAIL FROM, also when every address is ASCII', async () => {
    const { dest, r } = await setup(true);
    await sendMail(r.gw.port, 'alice@sender.test', ['bob@dest.test'], message('Grüße aus Köln'), { mail: 'SMTPUTF8' });
    await sendMail(r.gw.port, 'alice@sender.test', ['été@dest.test'], message('utf8 address'), { mail: 'SMTPUTF8' });
    await waitFor(() => dest.messages.length === 2, 10_000, 'delivery');
    expect(dest.messages.map((m) => [m.to[0], m.smtputf8])).toEqual(
      expect.arrayContaining([
        ['bob@dest.test', true],
        ['été@dest.test', true],
      ]),
    );
  });
});
