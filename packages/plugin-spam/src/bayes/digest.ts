/**
 * What identifies a message for "already learned" (SpamAssassin's bayes_seen): a hash
 * of the parts that the sender wrote, not of the trace headers that relays add, so that
 * the same message delivered twice, or handed to `learn` again by an administrator's
 * script, is recognised.
 */
import { createHash } from 'node:crypto';
import type { MessageContent } from '../content.js';

const IDENTIFYING_HEADERS = new Set(['message-id', 'date', 'from', 'to', 'cc', 'subject']);

/** A 128-bit digest, base64url (22 characters). */
export function messageDigest(content: MessageContent): string {
  const hash = createHash('sha256');
  for (const header of content.headers) {
    const name = header.name.toLowerCase();
    if (IDENTIFYING_HEADERS.has(name)) hash.update(`${name}:${header.value}\n`);
  }
  // Lengths separate the fields, so that moving text between them changes the digest.
  hash.update(`text:${content.text.length}\n${content.text}\nhtml:${content.html.length}\n${content.html}\n`);
  for (const attachment of content.attachments) {
    hash.update(`attachment:${attachment.mimeType};${attachment.size};${attachment.filename}\n`);
  }
  return hash.digest('base64url').slice(0, 22);
}
