/**
 * limits.maxConnectionsPerIp for IPv6 clients: counted per network prefix
 * (limits.ipv6PrefixLength, default /64), since one host commonly has a whole /64;
 * IPv4 (and IPv4-mapped IPv6) per address. The keying function on addresses, the
 * connection table on keys, then a real listener on ::1 (skipped without IPv6 loopback).
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Session } from '@mailgate/core';
import { resolveConfig } from '../../src/config/index.js';
import { clientKey } from '../../src/server/client-key.js';
import { ConnectionTable } from '../../src/server/listener.js';
import { haveIpv6Loopback, startGateway, until, type IntegrationGateway } from './helpers.js';

describe('clientKey', () => {
  it('IPv4 addresses are their own key', () => {
    expect(clientKey('192.0.2.1', 64)).toBe('192.0.2.1');
    expect(clientKey('127.0.0.1', 128)).toBe('127.0.0.1');
  });

  it('IPv4-mapped IPv6 addresses count as the IPv4 address, in either spelling', () => {
    expect(clientKey('::ffff:192.0.2.1', 64)).toBe('192.0.2.1');
    expect(clientKey('::ffff:c000:201', 64)).toBe('192.0.2.1');
    expect(clientKey('0:0:0:0:0:ffff:c000:0201', 48)).toBe('192.0.2.1');
    expect(clientKey('::FFFF:192.0.2.1', 128)).toBe('192.0.2.1');
  });

  it('IPv6 addresses are keyed by their /64 by default: every address of one /64 is one client', () => {
    const a = clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64);
    expect(a).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(clientKey('2001:db8:1:2::1', 64)).toBe(a);
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff', 64)).toBe(a);
    expect(clientKey('2001:DB8:1:2::', 64)).toBe(a);
    // The neighbouring /64 is another client.
    expect(clientKey('2001:db8:1:3::1', 64)).toBe('2001:db8:1:3:0:0:0:0/64');
    expect(clientKey('::1', 64)).toBe('0:0:0:0:0:0:0:0/64');
  });

  it('other prefix lengths, including ones that cut a group, and 128 (per address)', () => {
    expect(clientKey('2001:db8:abcd:ef12:3456::1', 48)).toBe('2001:db8:abcd:0:0:0:0:0/48');
    expect(clientKey('2001:db8:abcd:ef12:3456::1', 56)).toBe('2001:db8:abcd:ef00:0:0:0:0/56');
    expect(clientKey('2001:db8:abcd:ef12:3456:789a::1', 84)).toBe('2001:db8:abcd:ef12:3456:7000:0:0/84');
    expect(clientKey('2001:db8:abcd:ef12:3456:789a::1', 128)).toBe('2001:db8:abcd:ef12:3456:789a:0:1/128');
    expect(clientKey('2001:db8:abcd:ef12:3456:789a::1', 32)).toBe('2001:db8:0:0:0:0:0:0/32');
  });

  it('a dotted IPv4 tail that is not a mapped address stays IPv6 (NAT64, IPv4-compatible)', () => {
    expect(clientKey('64:ff9b::192.0.2.1', 128)).toBe('64:ff9b:0:0:0:0:c000:201/128');
    expect(clientKey('64:ff9b::192.0.2.1', 64)).toBe('64:ff9b:0:0:0:0:0:0/64');
    expect(clientKey('::192.0.2.1', 128)).toBe('0:0:0:0:0:0:c000:201/128');
    expect(clientKey('1:2:3:4:5:6:1.2.3.4', 128)).toBe('1:2:3:4:5:6:102:304/128');
  });

  it('a zone is dropped; what is not an address is its own key', () => {
    expect(clientKey('fe80::1%eth0', 64)).toBe('fe80:0:0:0:0:0:0:0/64');
    expect(clientKey('fe80::2%lo', 64)).toBe(clientKey('fe80::1%eth0', 64));
    expect(clientKey('', 64)).toBe('');
    expect(clientKey('not an address', 64)).toBe('not an address');
  });
});

describe('ConnectionTable with IPv6 prefixes', () => {
  const table = (ipv6PrefixLength: number) => new ConnectionTable({ maxConnections: 100, maxConnectionsPerIp: 2, ipv6PrefixLength, idleTimeout: 1_000 });

  it('addresses of one /64 share maxConnectionsPerIp; another /64 and IPv4 have their own', () => {
    const t = table(64);
    const k = (ip: string) => t.keyOf(ip);
    expect(t.admit(k('2001:db8::1'))).toBeUndefined();
    expect(t.admit(k('2001:db8::2:3:4'))).toBeUndefined();
    expect(t.admit(k('2001:db8::ffff:ffff:ffff:ffff'))).toMatch(/Too many connections from your address/);
    expect(t.admit(k('2001:db8:0:1::1'))).toBeUndefined();
    expect(t.admit(k('192.0.2.1'))).toBeUndefined();
    expect(t.admit(k('::ffff:192.0.2.1'))).toBeUndefined();
    expect(t.admit(k('192.0.2.1'))).toMatch(/Too many connections from your address/);
    expect(t.counts).toEqual({ open: 5, clients: 3 });
    t.release(k('2001:db8::2:3:4'));
    expect(t.admit(k('2001:db8::99'))).toBeUndefined();
    for (const ip of ['2001:db8::1', '2001:db8::99', '2001:db8:0:1::1', '192.0.2.1', '192.0.2.1']) t.release(k(ip));
    expect(t.counts).toEqual({ open: 0, clients: 0 });
  });

  it('ipv6PrefixLength 128 counts each address, as before', () => {
    const t = table(128);
    for (let i = 1; i <= 5; i++) expect(t.admit(t.keyOf(`2001:db8::${i}`))).toBeUndefined();
  });

  it('the config option: default 64, from 32 to 128', () => {
    expect(resolveConfig({}).limits.ipv6PrefixLength).toBe(64);
    expect(resolveConfig({ limits: { ipv6PrefixLength: 84 } }).limits.ipv6PrefixLength).toBe(84);
    expect(() => resolveConfig({ limits: { ipv6PrefixLength: 16 } })).toThrow(/ipv6PrefixLength/);
    expect(() => resolveConfig({ limits: { ipv6PrefixLength: 129 } })).toThrow(/ipv6PrefixLength/);
  });
});

describe('a real listener on IPv6 loopback', () => {
  let gw: IntegrationGateway | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await gw?.close();
    gw = undefined;
  });

  /** Connect and resolve with the first reply line. */
  function greeting(port: number, host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      sockets.push(s);
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n')) resolve(text.slice(0, text.indexOf('\r\n')));
      });
      s.once('error', reject);
      s.once('close', () => resolve(text));
    });
  }

  it('::1 is counted by its /64 against maxConnectionsPerIp; session.remoteAddress stays the real address', async (ctx) => {
    if (!(await haveIpv6Loopback())) ctx.skip();
    const seen: string[] = [];
    gw = await startGateway({ listen: [{ host: '::1', port: 0 }], limits: { maxConnectionsPerIp: 2 } }, (g) => {
      g.hooks.connect.tap('seen', (s: Session) => void seen.push(s.remoteAddress));
    });
    expect(await greeting(gw.port, '::1')).toMatch(/^220 /);
    expect(await greeting(gw.port, '::1')).toMatch(/^220 /);
    expect(await greeting(gw.port, '::1')).toMatch(/^421 4\.7\.0 Too many connections from your address/);
    expect(seen).toEqual(['::1', '::1']);
    const perIp = (gw.gateway as unknown as { table: { perIp: Map<string, number> } }).table.perIp;
    expect([...perIp]).toEqual([['0:0:0:0:0:0:0:0/64', 2]]);
    for (const s of sockets.splice(0)) s.destroy();
    await until(() => perIp.size === 0 && gw!.gateway.connections === 0, 'slots back');
  });

  it('dual-stack listener: an IPv4 client arrives IPv4-mapped and is counted (and seen) as IPv4, apart from ::1', async (ctx) => {
    if (!(await haveIpv6Loopback())) ctx.skip();
    const seen: string[] = [];
    try {
      gw = await startGateway({ listen: [{ host: '::', port: 0 }], limits: { maxConnectionsPerIp: 1 } }, (g) => {
        g.hooks.connect.tap('seen', (s: Session) => void seen.push(s.remoteAddress));
      });
    } catch {
      ctx.skip(); // no dual-stack wildcard here
    }
    const port = gw!.port;
    const v4 = await greeting(port, '127.0.0.1').catch(() => undefined);
    if (v4 === undefined) ctx.skip(); // IPV6_V6ONLY: no IPv4 on an IPv6 socket
    expect(v4).toMatch(/^220 /);
    expect(await greeting(port, '::1')).toMatch(/^220 /);
    expect(await greeting(port, '127.0.0.1')).toMatch(/^421 4\.7\.0 /);
    expect(await greeting(port, '::1')).toMatch(/^421 4\.7\.0 /);
    expect(seen).toEqual(['127.0.0.1', '::1']);
    const perIp = (gw!.gateway as unknown as { table: { perIp: Map<string, number> } }).table.perIp;
    expect(new Map(perIp)).toEqual(
      new Map([
        ['127.0.0.1', 1],
        ['0:0:0:0:0:0:0:0/64', 1],
      ]),
    );
  });
});
