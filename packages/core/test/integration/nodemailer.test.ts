/**
 * nodemailer (a real SMTP client) against a real gateway on loopback: plain,
 * STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, SMTPUTF8, 8-bit content with
 * attachments, pipelining, and many concurrent connections. The delivered bytes
 * are compared with the exact bytes the client sent (built with MailComposer).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { definePlugin } from '@mailgate/core';
import { authPlugin, refuseSender, startGateway, stripFirstReceived, textBody, type IntegrationGateway } from './helpers.js';

type TransportOptions = Parameters<typeof nodemailer.createTransport>[0];

function transport(port: number, options: Record<string, unknown> = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    tls: { rejectUnauthorized: false },
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
    socketTimeout: 10_000,
    ...options,
  } as TransportOptions);
}

/** The exact bytes nodemailer will put between DATA and the final dot (before dot-stuffing). */
async function compose(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  const raw = await new MailComposer(mail).compile().build();
  // The end-of-data sequence needs the message to end in CRLF; nodemailer adds one if it does not.
  return raw.subarray(-2).toString() === '\r\n' ? raw : Buffer.concat([raw, Buffer.from('\r\n')]);
}

const ASCII_MAIL = {
  from: 'Alice <alice@sender.test>',
  to: 'Bob <bob@example.test>',
  subject: 'integration',
  text: `hello from nodemailer\r\n.a line starting with a dot\r\n${textBody(20)}`,
  messageId: '<fixed-id@sender.test>',
  date: new Date('2024-01-02T03:04:05Z'),
};

describe('nodemailer → gateway', () => {
  let gw: IntegrationGateway;
  const seenAuth: Array<{ mechanism: string; username: string }> = [];

  beforeAll(async () => {
    gw = await startGateway(
      {
        withTls: true,
        listen: [
          { host: '127.0.0.1', port: 0, tls: 'starttls' },
          { host: '127.0.0.1', port: 0, tls: 'implicit' },
        ],
      },
      async (gateway) => {
        await gateway.use(authPlugin({ alice: 's3cret', 'bob@example.test': 'pässwörd' }, seenAuth));
        await gateway.use(refuseSender('spammer@bad.test'));
      },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('plain send (no TLS): body delivered byte for byte after the Received header', async () => {
    const raw = await compose(ASCII_MAIL);
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(0)).sendMail({ envelope: { from: 'alice@sender.test', to: ['bob@example.test'] }, raw });
    expect(info.accepted).toEqual(['bob@example.test']);
    expect(info.response).toMatch(/^250 2\.0\.0 OK: queued as /);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.from).toBe('alice@sender.test');
    expect(m!.rcpts).toEqual(['bob@example.test']);
    expect(m!.tls).toBeUndefined();
    expect(m!.esmtp).toBe(true);
    expect(m!.body.equals(raw)).toBe(true);
    expect(stripFirstReceived(m!.full).equals(raw)).toBe(true);
    expect(m!.added).toHaveLength(1);
    expect(m!.added[0]).toMatch(/^Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Mailgate\) with ESMTP id \S+\r\n\tfor <bob@example\.test>;\r\n\t\S/);
  });

  it('STARTTLS (requireTLS) send', async () => {
    const raw = await compose({ ...ASCII_MAIL, subject: 'starttls' });
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(0), { ignoreTLS: false, requireTLS: true }).sendMail({
      envelope: { from: 'alice@sender.test', to: ['bob@example.test'] },
      raw,
    });
    expect(info.accepted).toEqual(['bob@example.test']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: false });
    expect(m!.tls!.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(m!.body.equals(raw)).toBe(true);
    expect(m!.added[0]).toContain('with ESMTPS id');
  });

  it('implicit TLS listener (secure: true)', async () => {
    const raw = await compose({ ...ASCII_MAIL, subject: 'implicit' });
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(1), { secure: true, ignoreTLS: false }).sendMail({
      envelope: { from: 'alice@sender.test', to: ['bob@example.test'] },
      raw,
    });
    expect(info.accepted).toEqual(['bob@example.test']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.tls).toMatchObject({ implicit: true });
    expect(m!.body.equals(raw)).toBe(true);
  });

  it.each(['PLAIN', 'LOGIN'])('AUTH %s over STARTTLS authenticates the session', async (mechanism) => {
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(0), {
      ignoreTLS: false,
      requireTLS: true,
      authMethod: mechanism,
      auth: { user: 'bob@example.test', pass: 'pässwörd' },
    }).sendMail({ ...ASCII_MAIL, subject: `auth ${mechanism}` });
    expect(info.accepted).toEqual(['bob@example.test']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.user).toBe('bob@example.test');
    expect(m!.added[0]).toContain('with ESMTPSA id');
    expect(seenAuth).toContainEqual({ mechanism, username: 'bob@example.test' });
  });

  it('AUTH over implicit TLS', async () => {
    const info = await transport(gw.portOf(1), { secure: true, ignoreTLS: false, auth: { user: 'alice', pass: 's3cret' } }).sendMail(ASCII_MAIL);
    expect(info.accepted).toEqual(['bob@example.test']);
  });

  it.each(['PLAIN', 'LOGIN'])('AUTH %s with a wrong password gets 535', async (mechanism) => {
    const before = gw.capture.messages.length;
    const error = await transport(gw.portOf(0), {
      ignoreTLS: false,
      requireTLS: true,
      authMethod: mechanism,
      auth: { user: 'alice', pass: 'wrong' },
    })
      .sendMail(ASCII_MAIL)
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string; responseCode?: number; response?: string },
      );
    expect(error).toBeDefined();
    expect(error!.code).toBe('EAUTH');
    expect(error!.responseCode).toBe(535);
    expect(error!.response).toMatch(/^535 5\.7\.8 /);
    expect(gw.capture.messages.length).toBe(before);
  });

  it('AUTH is not offered in plaintext: nodemailer sends unauthenticated (it only logs in when AUTH is advertised)', async () => {
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(0), { auth: { user: 'alice', pass: 's3cret' } }).sendMail(ASCII_MAIL);
    expect(info.accepted).toEqual(['bob@example.test']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.user).toBeUndefined();
    expect(m!.tls).toBeUndefined();
  });

  it('attachments, 8-bit UTF-8 text and an SMTPUTF8 recipient', async () => {
    const binary = Buffer.alloc(70_000);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 31 + 7) & 0xff;
    const raw = await compose({
      from: 'Ελένη <eleni@sender.test>',
      to: 'δοκιμή@example.test',
      subject: 'Δοκιμή — ünïcödé ✓',
      text: 'Γειά σου κόσμε! Ünïcödé body with € and 日本語.\r\n.leading dot line\r\n',
      html: '<p>Γειά σου <b>κόσμε</b></p>',
      textEncoding: 'quoted-printable',
      attachments: [
        { filename: 'data.bin', content: binary },
        { filename: 'notes-ü.txt', content: 'plain text attachment\r\n.dot\r\n', contentTransferEncoding: '8bit' },
      ],
      messageId: '<utf8@sender.test>',
      date: new Date('2024-01-02T03:04:05Z'),
    });
    const before = gw.capture.messages.length;
    const info = await transport(gw.portOf(0), { ignoreTLS: false, requireTLS: true }).sendMail({
      envelope: { from: 'eleni@sender.test', to: ['δοκιμή@example.test'] },
      raw,
    });
    expect(info.accepted).toEqual(['δοκιμή@example.test']);
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.rcpts).toEqual(['δοκιμή@example.test']);
    expect(m!.smtputf8).toBe(true);
    expect(m!.body.equals(raw)).toBe(true);
    expect(m!.body.length).toBeGreaterThan(90_000);
    expect(m!.added[0]).toContain('with UTF8SMTPS id');
  });

  it('raw 8-bit (BODY=8BITMIME) body bytes survive unchanged', async () => {
    const raw = Buffer.concat([
      Buffer.from('From: a@sender.test\r\nTo: bob@example.test\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
      Buffer.from('ünïcödé ✓ — every 8-bit byte: '),
      Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)),
      Buffer.from('\r\n..two dots\r\n.\tdot tab\r\n'),
    ]);
    const before = gw.capture.messages.length;
    await transport(gw.portOf(0)).sendMail({ envelope: { from: 'a@sender.test', to: ['bob@example.test'] }, raw });
    const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
    expect(m!.body.equals(raw)).toBe(true);
  });

  it('a refused sender is reported by nodemailer as a 550 and nothing is stored', async () => {
    const before = gw.capture.messages.length;
    const error = await transport(gw.portOf(0))
      .sendMail({ ...ASCII_MAIL, from: 'spammer@bad.test' })
      .then(
        () => undefined,
        (e: unknown) => e as { responseCode?: number; command?: string },
      );
    expect(error?.responseCode).toBe(550);
    expect(gw.capture.messages.length).toBe(before);
  });

  it('a pooled transport sends several messages over one connection', async () => {
    const pool = transport(gw.portOf(0), { pool: true, maxConnections: 1, maxMessages: 10 });
    const before = gw.capture.messages.length;
    try {
      const results = await Promise.all(
        [1, 2, 3, 4].map((i) => pool.sendMail({ ...ASCII_MAIL, subject: `pooled ${i}`, to: `rcpt${i}@example.test` })),
      );
      for (const [i, r] of results.entries()) expect(r.accepted).toEqual([`rcpt${i + 1}@example.test`]);
    } finally {
      pool.close();
    }
    const got = (await gw.capture.waitFor(before + 4)).slice(before);
    expect(new Set(got.map((m) => m.sessionId)).size).toBe(1);
    expect(got.map((m) => m.rcpts[0]).sort()).toEqual(['rcpt1@example.test', 'rcpt2@example.test', 'rcpt3@example.test', 'rcpt4@example.test']);
  });
});

/** A TCP relay that records the chunks the client wrote, to see what was pipelined. */
async function recordingProxy(targetPort: number): Promise<{ port: number; chunks: string[]; close(): Promise<void> }> {
  const chunks: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (c: Buffer) => {
      chunks.push(c.toString('latin1'));
      upstream.write(c);
    });
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done).on('error', done);
    upstream.on('close', done).on('error', done);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  return {
    port: (server.address() as { port: number }).port,
    chunks,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

describe('nodemailer pipelining', () => {
  let gw: IntegrationGateway;
  beforeAll(async () => {
    gw = await startGateway({}, undefined, { domains: ['example.test'] });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('MAIL, every RCPT and DATA go out in one write and each gets its own reply, in order', async () => {
    const proxy = await recordingProxy(gw.port);
    try {
      const raw = await compose(ASCII_MAIL);
      const before = gw.capture.messages.length;
      const info = await transport(proxy.port).sendMail({
        envelope: { from: 'alice@sender.test', to: ['one@example.test', 'nobody@elsewhere.test', 'two@example.test'] },
        raw,
      });
      expect(info.accepted).toEqual(['one@example.test', 'two@example.test']);
      expect(info.rejected).toEqual(['nobody@elsewhere.test']);
      const envelope = proxy.chunks.find((c) => c.startsWith('MAIL FROM:'));
      expect(envelope).toBeDefined();
      expect(envelope).toMatch(/^MAIL FROM:<alice@sender\.test>[^\r]*\r\nRCPT TO:<one@example\.test>\r\nRCPT TO:<nobody@elsewhere\.test>\r\nRCPT TO:<two@example\.test>\r\nDATA\r\n$/);
      const [m] = (await gw.capture.waitFor(before + 1)).slice(before);
      expect(m!.rcpts).toEqual(['one@example.test', 'two@example.test']);
      expect(m!.body.equals(raw)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('with every recipient refused, the pipelined DATA gets 554 and no message is stored', async () => {
    const before = gw.capture.messages.length;
    const error = await transport(gw.port)
      .sendMail({ envelope: { from: 'a@sender.test', to: ['x@elsewhere.test', 'y@elsewhere.test'] }, raw: 'Subject: x\r\n\r\nx\r\n' })
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string; rejected?: string[] },
      );
    expect(error?.code).toBe('EENVELOPE');
    expect(gw.capture.messages.length).toBe(before);
  });
});

describe('many concurrent nodemailer clients', () => {
  const N = 200;
  let gw: IntegrationGateway;
  let waiting = 0;
  let release: () => void = () => undefined;
  const allConnected = new Promise<void>((res) => (release = res));
  beforeAll(async () => {
    gw = await startGateway(
      { limits: { maxConnections: 400, maxConnectionsPerIp: 400 } },
      async (gateway) => {
        // A barrier at MAIL: no session gets past it until all N are connected at once.
        await gateway.use(
          definePlugin({
            name: 'test-barrier',
            setup({ tap }) {
              tap('mail', async () => {
                if (++waiting === N) release();
                await allConnected;
                return undefined;
              });
            },
          }),
        );
      },
      { keepBody: false },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it(`${N} simultaneous connections each deliver their message`, async () => {
    let peak = 0;
    void allConnected.then(() => (peak = gw.gateway.connections));
    const results = await Promise.allSettled(
      Array.from({ length: N }, (_, i) =>
        transport(gw.port, { socketTimeout: 20_000 }).sendMail({
          envelope: { from: `s${i}@sender.test`, to: [`r${i}@example.test`] },
          raw: `Subject: concurrent ${i}\r\n\r\n${textBody(30, i + 1)}`,
        }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
    const got = await gw.capture.waitFor(N);
    expect(new Set(got.map((m) => m.rcpts[0])).size).toBe(N);
    expect(new Set(got.map((m) => m.sessionId)).size).toBe(N);
    expect(peak).toBe(N);
  });
});
