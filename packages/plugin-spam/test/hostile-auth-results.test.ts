/**
 * A sender's Authentication-Results fields that claim to be ours (RFC 8601 §5) written
 * the ways RFC 8601 allows: the authserv-id after a comment, as a quoted-string, or
 * followed at once by a comment, or as the absolute name with a trailing dot. Readers (Mail::AuthenticationResults, Python authres,
 * mailauth) see our authserv-id in each; every one must be removed.
 */
import { describe, expect, it } from 'vitest';
import { testSession } from '@mailgate/core/testing';
import { dataOf, message, spamGateway, startSpamDns, testOptions, useDnsFixture } from './helpers.js';

const { dns, path } = useDnsFixture(startSpamDns);

async function stored(body: string): Promise<string> {
  const { gateway, stored } = await spamGateway(dns.resolver, testOptions({}));
  const s = await testSession(gateway, { remoteAddress: '192.0.2.10' });
  await s.send('EHLO client.example\r\n');
  await s.send('MAIL FROM:<ann@spf-pass.example>\r\n');
  await s.send('RCPT TO:<bob@example.test>\r\n');
  await s.send('DATA\r\n');
  const final = await s.send(dataOf(body));
  await s.send('QUIT\r\n');
  await gateway.close();
  expect(final).toMatch(/^250 /);
  return stored[0]!.full;
}

describe('Authentication-Results claiming our authserv-id', () => {
  it('are removed however the authserv-id is written; others are kept', async () => {
    const forged = [
      'Authentication-Results: (trust me) mx.test; dkim=pass header.d=bank1.example',
      'Authentication-Results: "mx.test"; dkim=pass header.d=bank2.example',
      'Authentication-Results: mx.test(comment); dkim=pass header.d=bank3.example',
      'Authentication-Results:\r\n (a (nested) \\) comment)\r\n  MX.TEST 1 ; dkim=pass header.d=bank4.example',
      // the absolute form of our name, as a reader that normalises the FQDN sees it
      'Authentication-Results: MX.TEST.; dkim=pass header.d=bank5.example',
      'Authentication-Results: "mx.test."; dkim=pass header.d=bank6.example',
      'Authentication-Results: (mx.test) mx.other.example; spf=fail smtp.mailfrom=x@keep.example',
      'Authentication-Results: "mx.test.evil"; spf=fail smtp.mailfrom=x@keep2.example',
      'Authentication-Results: mx.test..; spf=fail smtp.mailfrom=x@keep3.example',
    ];
    const full = await stored(message({ headers: forged }));
    const head = full.slice(0, full.indexOf('\r\n\r\n'));
    for (const n of [1, 2, 3, 4, 5, 6]) expect(head).not.toContain(`bank${n}.example`);
    expect(head).toContain('x@keep.example');
    expect(head).toContain('x@keep2.example');
    expect(head).toContain('x@keep3.example');
  });
});
