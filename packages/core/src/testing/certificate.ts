import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface TestCertificate {
  key: string;
  cert: string;
  /** Files holding key and cert, for configs that name paths. */
  keyFile: string;
  certFile: string;
}

/**
 * A self-signed certificate made at test time (never a key checked into the repo).
 * Clients in tests must skip verification or trust `cert` explicitly.
 */
export async function generateTestCertificate(hostname = 'localhost'): Promise<TestCertificate> {
  const pems = selfsigned.generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    days: 2,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'mailgate-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  await writeFile(certFile, pems.cert);
  return { key: pems.private, cert: pems.cert, keyFile, certFile };
}
