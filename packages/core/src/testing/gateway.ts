import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayConfigInput } from '../config/schema.js';
import { createGateway, type Gateway, type GatewayOptions } from '../gateway.js';
import { silentLogger } from '../log.js';

export interface TestGateway {
  gateway: Gateway;
  host: string;
  port: number;
  /** Per-test temporary directory (spool lives here); removed by close(). */
  dir: string;
  close(): Promise<void>;
}

/**
 * Start a gateway on 127.0.0.1 with a port chosen by the OS and a private spool
 * directory; `setup` taps hooks or `use()`s plugins before it listens.
 */
export async function startTestGateway(
  config: GatewayConfigInput = {},
  setup?: (gateway: Gateway, dir: string) => void | Promise<void>,
  options: GatewayOptions = {},
): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-test-'));
  const gateway = createGateway(
    { hostname: 'mx.test', listen: [{ host: '127.0.0.1', port: 0 }], ...config, spool: { dir: join(dir, 'spool'), ...config.spool } },
    { logger: silentLogger, ...options },
  );
  await setup?.(gateway, dir);
  const [address] = await gateway.listen();
  return {
    gateway,
    host: '127.0.0.1',
    port: address!.port,
    dir,
    async close() {
      await gateway.close(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
