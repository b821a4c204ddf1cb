import { createServer } from 'node:net';

/**
 * A TCP port free on `host` right now, for a child process that must be told its port
 * (a `mailgate serve --listen`, dnsmasq): listen on port 0, note the port, let it go.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
