import { describe, expect, it } from 'vitest';
import { testSession } from '@mailgate/core/testing';
import { createGateway, silentLogger } from '@mailgate/core';
import { plugin, sleep } from './helpers.js';

async function captureUnhandled(fn: () => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  const seen: unknown[] = [];
  const handler = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', handler);
  try { await fn(); await sleep(50); } finally {
    process.off('unhandledRejection', handler);
    for (const l of saved) process.on('unhandledRejection', l as never);
  }
  return seen;
}

describe('probe', () => {
  it.fails('async throw Object.create(null)', async () => {
    const gw = createGateway({ hostname: 'mx.test', spool: { dir: '/tmp/hx/sp' } }, { logger: silentLogger });
    await gw.use(plugin('evil', ({ tap }) => tap('helo', async () => { throw Object.create(null); })));
    const s = await testSession(gw);
    let out = '';
    const seen = await captureUnhandled(async () => { s.session.feed(Buffer.from('EHLO x\r\n')); await sleep(100); out = s.take(); });
    console.log('seen', seen.length, String((seen[0] as Error)?.message), JSON.stringify(out));
    expect(seen).toEqual([]);
    expect(out).toMatch(/^450 /);
  });
});
