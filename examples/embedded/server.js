// Mailgate embedded in a program, no YAML: accept mail for one domain, refuse a
// blocked sender, and hand every accepted message to our own code (here: print it).
// Run: node examples/embedded/server.js   (listens on 127.0.0.1:2526, or $PORT)
import { accept, createGateway, reject } from '@mailgate/core';

const port = Number(process.env.PORT ?? 2526);
const gateway = createGateway({
  hostname: 'mx.embedded.test',
  listen: [{ host: '127.0.0.1', port }],
  log: { level: 'info', format: 'pretty' },
});
gateway.addLocalDomain('embedded.test');

gateway.hooks.mail.tap('blocklist', (_session, tx) =>
  tx.sender?.domain.toLowerCase() === 'spam.test' ? reject('Sender blocked by policy') : undefined,
);

// Claiming a recipient says "this program delivers it"; unclaimed ones get 550 5.1.1.
gateway.hooks.claim.tap('inbox', (_session, _tx, rcpt) =>
  rcpt.address.domain.toLowerCase() === 'embedded.test' ? accept() : undefined,
);

// `queue` runs before the client gets 250: make the message durable here.
gateway.hooks.queue.tapPromise('inbox', async (_session, tx) => {
  const subject = await tx.message.header('subject');
  console.log(`message ${tx.id} from <${tx.senderText}> to ${tx.claimedBy('inbox').map((r) => `<${r.text}>`).join(', ')}: ${subject ?? '(no subject)'}`);
});

const [address] = await gateway.listen();
console.log(`embedded gateway listening on ${address.address}:${address.port}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => gateway.close().then(() => process.exit(0)));
}
