import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DnsError, normalizeName, reverseLabels, reverseName } from '../../src/dns/index.js';
import { parseServer, systemServers } from '../../src/dns/servers.js';

describe('names', () => {
  it('normalizes case and one trailing dot', () => {
    expect(normalizeName('Mail.Example.TEST.')).toBe('mail.example.test');
    expect(normalizeName('_dmarc.example.test')).toBe('_dmarc.example.test');
    // RFC 2181 §11: any octet may be in a label; SPF macros can produce spaces
    expect(normalizeName('Macro Space.example.test')).toBe('macro space.example.test');
    expect(() => normalizeName('tab\there.test')).toThrow(DnsError);
    expect(() => normalizeName('example..test')).toThrow(DnsError);
    expect(() => normalizeName(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`)).toThrow(DnsError);
    expect(normalizeName(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`)).toHaveLength(253);
  });

  it('builds reverse names for IPv4 and IPv6', () => {
    expect(reverseName('192.0.2.1')).toBe('1.2.0.192.in-addr.arpa');
    expect(reverseLabels('127.0.0.2')).toBe('2.0.0.127');
    expect(reverseName('2001:db8::1')).toBe(
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    expect(reverseName('::1')).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
    expect(reverseName('::')).toBe(`${'0.'.repeat(32)}ip6.arpa`);
    expect(reverseName('2001:DB8:0:0:1::')).toBe(
      '0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    // IPv4-mapped IPv6 keeps its IPv6 form
    expect(reverseLabels('::ffff:192.0.2.1')).toBe(`1.0.2.0.0.0.0.c.f.f.f.f.${'0.'.repeat(19)}0`);
    expect(() => reverseName('192.0.2')).toThrow(TypeError);
  });
});

describe('servers', () => {
  it('parses server specs', () => {
    expect(parseServer('10.0.0.1')).toEqual({ host: '10.0.0.1', port: 53, family: 4 });
    expect(parseServer('10.0.0.1:5353')).toEqual({ host: '10.0.0.1', port: 5353, family: 4 });
    expect(parseServer('[2001:db8::1]:5353')).toEqual({ host: '2001:db8::1', port: 5353, family: 6 });
    expect(parseServer('[::1]')).toEqual({ host: '::1', port: 53, family: 6 });
    expect(() => parseServer('localhost')).toThrow(TypeError);
    expect(() => parseServer('10.0.0.1:0')).toThrow(TypeError);
  });

  it('reads nameservers from resolv.conf, else 127.0.0.1', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailgate-resolv-'));
    try {
      const file = path.join(dir, 'resolv.conf');
      writeFileSync(file, '# comment\nsearch example.test\nnameserver 192.0.2.53\nnameserver   2001:db8::53\nnameserver bogus\noptions ndots:1\n');
      expect(systemServers(file)).toEqual([
        { host: '192.0.2.53', port: 53, family: 4 },
        { host: '2001:db8::53', port: 53, family: 6 },
      ]);
      expect(systemServers(path.join(dir, 'missing'))).toEqual([{ host: '127.0.0.1', port: 53, family: 4 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
