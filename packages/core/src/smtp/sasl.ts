/**
 * Decoding of SASL responses for AUTH PLAIN (RFC 4616) and AUTH LOGIN. Malformed
 * input yields undefined (a 501 for the client), never an exception.
 */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 → UTF-8 text; undefined if the line is not canonical base64. */
export function decodeBase64Line(line: string): string | undefined {
  const text = line.trim();
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64').toString('utf8');
}

export interface PlainCredentials {
  authzid: string | undefined;
  username: string;
  password: string;
}

/** `base64(authzid NUL authcid NUL passwd)`; an empty authzid means "act as authcid". */
export function decodeSaslPlain(line: string): PlainCredentials | undefined {
  const decoded = decodeBase64Line(line);
  if (decoded === undefined) return undefined;
  const parts = decoded.split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid = '', username = '', password = ''] = parts;
  if (!username || !password) return undefined;
  return { authzid: authzid || undefined, username, password };
}
