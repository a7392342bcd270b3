/**
 * Small network helpers of the test harness. One self-signed certificate per test process (openssl takes ~100 ms), valid for localhost and
 * 127.0.0.1: the test servers present it, and tests trust it through its file (NODE_EXTRA_CA_CERTS
 * for the program under test). 127.0.0.2 is deliberately not in it, to test name checks.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cert {
  key: string;
  cert: string;
  keyFile: string;
  /** The certificate, which is its own CA. */
  caFile: string;
}

let cached: Cert | undefined;

export function selfSignedCert(): Cert {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'sf-cert-'));
  chmodSync(dir, 0o755); // the certificate is public; a non-root client (the image's user) reads it
  const keyFile = join(dir, 'server.key');
  const caFile = join(dir, 'server.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', caFile], { stdio: 'ignore' });
  cached = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(caFile, 'utf8'), keyFile, caFile };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return cached;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers: the hang tests' peer. */
export async function startSilentServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    async stop() {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
