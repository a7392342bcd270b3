/**
 * Small network helpers of the test harness. One self-signed certificate per test process (openssl takes ~100 ms),
 * valid for localhost and 127.0.0.1: the test servers present it, and tests trust it through its file
 * (NODE_EXTRA_CA_CERTS for the program under test). 127.0.0.2 is deliberately not in it, to test name checks.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
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
      for (const socket of sockets) socket.destroy();
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

/** A certificate authority of the tests (EC P-256: a few ms to make), and the certificates it issues. */
export interface TestCa {
  name: string;
  /** PEM of the CA certificate: what a client trusts (sslrootcert, DATABASE_SSL_CA_FILE, NODE_EXTRA_CA_CERTS). */
  certFile: string;
  keyFile: string;
  dir: string;
}

export interface IssuedCert {
  cert: string;
  key: string;
  /** The issuing CA's certificate file. */
  caFile: string;
}

const cas = new Map<string, TestCa>();

/** A CA by name, made once per test process (two names: two CAs that do not trust each other). */
export function testCa(name: string): TestCa {
  const known = cas.get(name);
  if (known) return known;
  const dir = tempDir(`sf-ca-${name.replace(/[^a-z0-9]/gi, '')}-`);
  chmodSync(dir, 0o755);
  const ca = { name, dir, certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      ca.keyFile,
      '-out',
      ca.certFile,
    ],
    { stdio: 'ignore' },
  );
  cas.set(name, ca);
  return ca;
}

/** A server certificate signed by `ca` for the given subjectAltName (e.g. "DNS:other.example" or "IP:127.0.0.1"). */
export function issueCert(ca: TestCa, subjectAltName: string): IssuedCert {
  const base = join(ca.dir, `leaf-${randomUUID()}`);
  execFileSync(
    'openssl',
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=test-server',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(
    `${base}.ext`,
    `subjectAltName=${subjectAltName}\n` +
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      `0x${randomUUID().replace(/-/g, '').slice(0, 16)}`,
      '-days',
      '2',
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.crt`,
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(`${base}.crt`, 'utf8'), key: readFileSync(`${base}.key`, 'utf8'), caFile: ca.certFile };
}

/** One request handler served on loopback over HTTP and HTTPS (the harness's self-signed certificate). */
export interface DualServer {
  httpUrl: string;
  httpsUrl: string;
  /** The HTTP port. */
  port: number;
  caFile: string;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

export async function listenHttpAndHttps(
  onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<DualServer> {
  const cert = selfSignedCert();
  const plain = http.createServer(onRequest);
  const tls = https.createServer({ key: cert.key, cert: cert.cert }, onRequest);
  const servers = [plain, tls];
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const portOf = (server: http.Server) => (server.address() as { port: number }).port;
  return {
    httpUrl: `http://127.0.0.1:${portOf(plain)}`,
    httpsUrl: `https://127.0.0.1:${portOf(tls)}`,
    port: portOf(plain),
    caFile: cert.caFile,
    async close() {
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}
