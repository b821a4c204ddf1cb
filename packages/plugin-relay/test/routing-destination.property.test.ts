/**
 * Smarthost / route `host` values the options schema lets through (found by property
 * testing; kept out of routing.property.test.ts because it fails on the current source).
 * The schema's pattern is `^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(:\d{1,5})?$`: any one to five
 * digits pass as a port, and anything of hex digits, colons and dots passes in brackets.
 * So `host: "smtp.example:0"`, `"smtp.example:99999"` or `"[:]:587"` validate and the
 * gateway starts. Then port 99999 fails every delivery attempt as a temporary error
 * ("Port should be >= 0 and < 65536"), until the message expires and bounces five days
 * later; port 0 is taken by nodemailer as "no port" and the relay silently connects to
 * 587 instead; "[:]" is resolved as the host name ":".
 *
 * Expected (DESIGN.md, Configuration: "a wrong key or type is reported … before any port
 * is opened"): the schema refuses a port outside 1-65535 and a bracketed host that is no
 * IP address.
 */
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { destinationSchema } from '../src/options.js';
import { splitHostPort } from '../src/routing.js';

describe('destination host values that validate', () => {
  it('name a connectable host and a port in 1-65535', () => {
    const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6().map((ip) => `[${ip}]`), fc.stringMatching(/^\[[0-9a-fA-F:.]{1,8}\]$/));
    const port = fc.option(fc.stringMatching(/^\d{1,5}$/), { nil: undefined });
    fc.assert(
      fc.property(host, port, (h, p) => {
        const text = p === undefined ? h : `${h}:${p}`;
        if (!destinationSchema.safeParse({ host: text }).success) return;
        const { host: name, port: number } = splitHostPort(text, 25);
        expect(Number.isInteger(number) && number >= 1 && number <= 65535, text).toBe(true);
        if (h.startsWith('[')) expect(isIP(name), text).not.toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it.each(['a:0', 'smtp.example:99999', '[:]', '[::1]:0'])('regression: %s is refused by the schema', (host) => {
    expect(destinationSchema.safeParse({ host }).success).toBe(false);
  });
});
