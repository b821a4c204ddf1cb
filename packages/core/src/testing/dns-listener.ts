/**
 * A DNS server's sockets for tests: UDP and TCP (RFC 7766 length-prefixed) on one free
 * loopback port, each message handed to `handle` with a way to answer it. What the
 * server answers is the caller's (startTestDnsServer's zones, the SPF suite's zone
 * files); binding, framing and closing are done once, here.
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** One DNS message in; `send` writes one message back over the same transport. */
export type DnsMessageHandler = (msg: Buffer, transport: 'udp' | 'tcp', send: (out: Buffer) => void, peer?: dgram.RemoteInfo) => void;

export interface DnsListener {
  port: number;
  /** `127.0.0.1:port` */
  address: string;
  /** Close both sockets, dropping open TCP connections. */
  close(): Promise<void>;
}

export async function listenDns(handle: DnsMessageHandler): Promise<DnsListener> {
  const connections = new Set<net.Socket>();
  // UDP and TCP on the same port: bind UDP to an ephemeral port, then try TCP on it.
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const port = udp.address().port;
    const tcp = net.createServer((socket) => {
      connections.add(socket);
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2) {
          const length = buffered.readUInt16BE(0);
          if (buffered.length < 2 + length) break;
          const msg = buffered.subarray(2, 2 + length);
          buffered = buffered.subarray(2 + length);
          handle(msg, 'tcp', (out) => {
            if (socket.destroyed) return;
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(out.length);
            socket.write(Buffer.concat([prefix, out]));
          });
        }
      });
      socket.on('error', () => {}); // a client hanging up early is not a test failure
      socket.on('close', () => connections.delete(socket));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => resolve());
      });
    } catch {
      udp.close(); // the TCP port was taken: try another one
      continue;
    }
    udp.on('message', (msg, peer) => handle(msg, 'udp', (out) => udp.send(out, peer.port, peer.address), peer));
    udp.on('error', () => {});
    return {
      port,
      address: `127.0.0.1:${port}`,
      async close() {
        for (const socket of connections) socket.destroy();
        await Promise.all([new Promise<void>((resolve) => tcp.close(() => resolve())), new Promise<void>((resolve) => udp.close(() => resolve()))]);
      },
    };
  }
  throw new Error('listenDns: could not get the same free port for UDP and TCP');
}
