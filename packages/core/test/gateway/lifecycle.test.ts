import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, createLogger, definePlugin, silentLogger } from '@mailgate/core';
import { describe, expect, it } from 'vitest';

function lifecyclePlugin(events: string[]) {
  return definePlugin({
    name: 'lifecycle',
    setup({ onListen, onClose }) {
      events.push('setup');
      onListen(() => {
        events.push('listen');
      });
      onClose(() => {
        events.push('close');
      });
    },
  });
}

const config = () => ({ listen: [{ host: '127.0.0.1', port: 0 }], spool: { dir: join(mkdtempSync(join(tmpdir(), 'mg-life-')), 'spool') } });

describe('plugin lifecycle', () => {
  it('onListen runs only once the gateway listens, onClose when it closes', async () => {
    const events: string[] = [];
    const gw = createGateway(config(), { logger: silentLogger });
    await gw.use(lifecyclePlugin(events));
    expect(events).toEqual(['setup']);
    await gw.listen();
    expect(events).toEqual(['setup', 'listen']);
    await gw.close();
    expect(events).toEqual(['setup', 'listen', 'close']);
  });

  it('a gateway that never listens (mailgate check) never starts its plugins', async () => {
    const events: string[] = [];
    const gw = createGateway(config(), { logger: silentLogger });
    await gw.use(lifecyclePlugin(events));
    await gw.close();
    expect(events).toEqual(['setup', 'close']);
  });

  it('a failing onListen is logged, not fatal', async () => {
    const gw = createGateway(config(), { logger: silentLogger });
    await gw.use(definePlugin({ name: 'bad-start', setup: ({ onListen }) => onListen(() => { throw new Error('boom'); }) }));
    await expect(gw.listen()).resolves.toHaveLength(1);
    await gw.close();
  });

  it('tapping after listen throws a clear error', async () => {
    const gw = createGateway(config(), { logger: silentLogger });
    await gw.listen();
    expect(() => gw.hooks.rcpt.tap('late', () => undefined)).toThrow(/after the gateway started listening/);
    await expect(gw.use(lifecyclePlugin([]))).rejects.toThrow(/after the gateway started listening/);
    await gw.close();
  });

  it('warns at listen when the hostname is not fully qualified (it goes into the greeting and Received:)', async () => {
    for (const [hostname, warned] of [['vm', true], ['mx.example.test', false]] as const) {
      const lines: string[] = [];
      const gw = createGateway({ ...config(), hostname }, { logger: createLogger({ level: 'warn', write: (l) => void lines.push(l) }) });
      await gw.listen();
      await gw.close();
      expect(lines.some((l) => l.includes('hostname is not a fully qualified domain name')), hostname).toBe(warned);
    }
  });
});
