/**
 * An ORCPT the client sent in RFC 6533's raw form (utf-8-addr-unitext, under SMTPUTF8)
 * is within RFC 3461's 500 characters as received, but we pass it on as ASCII
 * utf-8-addr-xtext, where each non-ASCII character is `\x{HHHH}`: up to ten times as
 * long. 200 "é" became a 1,200-character ORCPT, over the limit and over the next hop's
 * RCPT line length, so a DSN-capable next hop (here a second Mailgate) refused the
 * recipient with a permanent 500 and the message bounced. ORCPT is optional for the next
 * hop: one that cannot be passed on within 500 characters is left out (our own reports
 * still name it), and the message is delivered.
 */
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { DEST_ZONE, message, sendMail, startReceiver, startRelayer, useRelayFixture, waitFor } from './helpers.js';

const fx = useRelayFixture(DEST_ZONE);
const { cleanup } = fx;

it('a long raw-UTF-8 ORCPT does not make a DSN-capable next hop refuse the recipient', async () => {
  const dest = await startReceiver({});
  cleanup.push(() => dest.close());
  const r = await startRelayer({ retry: { schedule: ['200ms'], maxAge: '20s', jitter: 0 }, mxPort: { 'mx1.dest.test': dest.port } }, fx.dns.address);
  cleanup.push(() => r.close());
  const orcpt = `utf-8;${'\u00e9'.repeat(200)}@sender.test`;
  await sendMail(r.gw.port, 'alice@sender.test', ['a@dest.test', 'b@dest.test'], message('long orcpt'), {
    mail: 'SMTPUTF8',
    rcpt: { 'a@dest.test': `NOTIFY=FAILURE ORCPT=${orcpt}`, 'b@dest.test': 'ORCPT=utf-8;short@sender.test' },
  });
  await waitFor(() => r.events.delivered.length > 0 || r.events.bounced.length > 0, 10_000, 'an outcome');
  expect(JSON.stringify(r.events.bounced)).toBe("[]");
  await waitFor(() => dest.messages.length === 1, 5_000, 'delivery');
  const got = dest.messages[0]!;
  expect(got.to).toEqual(['a@dest.test', 'b@dest.test']);
  // The short one is passed on; NOTIFY is passed on without the ORCPT that could not be.
  expect(got.rcptDsn).toEqual([{ notify: ['FAILURE'] }, { orcpt: { type: 'utf-8', address: 'short@sender.test' } }]);
  await waitFor(async () => (await readdir(join(r.gw.dir, 'queue', 'msg'))).filter((n) => !n.startsWith('.')).length === 0, 5_000, 'empty queue');
});
