// A throwaway certificate authority and a server certificate signed by it, so that tests can
// serve HTTPS on loopback and have a client (Synapse, MAS, Node) trust it without turning
// verification off. Made with the `openssl` CLI because Node's crypto cannot issue X.509
// certificates.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  /** The temporary folder holding every file below. */
  dir: string;
  /** The CA certificate: give it to the client as its trust root (e.g. SSL_CERT_FILE). */
  caCertPath: string;
  caCert: string;
  /** The server certificate (leaf only; the CA is the direct issuer) and its private key. */
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** Deletes the folder. */
  dispose(): Promise<void>;
}

export interface TestCaOptions {
  /** Subject alternative names of the server certificate. */
  hosts?: string[];
  /** Common name of the CA, to tell several test CAs apart in error messages. */
  name?: string;
}

const DEFAULT_HOSTS = ['127.0.0.1', '::1', 'localhost'];

function subjectAltName(hosts: string[]): string {
  const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':');
  return hosts.map((h) => (isIp(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

// A config of our own rather than the system openssl.cnf, whose default extensions differ
// between distributions. The key identifiers matter: strict verifiers (Python 3.13's default
// VERIFY_X509_STRICT) reject certificates without an authority key identifier.
function opensslConfig(hosts: string[]): string {
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${subjectAltName(hosts)}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed while making the test CA: ${stderr || String(error)}`);
  }
}

export async function makeTestCa(options: TestCaOptions = {}): Promise<TestCa> {
  const hosts = options.hosts ?? DEFAULT_HOSTS;
  const name = options.name ?? 'wiki-matrix-sso test CA';
  const dir = await mkdtemp(join(tmpdir(), 'wms-tls-'));
  try {
    await writeFile(join(dir, 'openssl.cnf'), opensslConfig(hosts));
    const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await openssl(dir, [
      'req', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca_ext', ...key,
      '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name}`,
    ]);
    await openssl(dir, [
      'req', '-new', '-config', 'openssl.cnf', ...key,
      '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${hosts[0] ?? 'localhost'}`,
    ]);
    await openssl(dir, [
      'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-extfile', 'openssl.cnf', '-extensions', 'server_ext', '-out', 'server.pem',
    ]);
    const path = (file: string) => join(dir, file);
    const read = (file: string) => readFile(path(file), 'utf8');
    return {
      dir,
      caCertPath: path('ca.pem'),
      caCert: await read('ca.pem'),
      certPath: path('server.pem'),
      keyPath: path('server.key'),
      cert: await read('server.pem'),
      key: await read('server.key'),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
