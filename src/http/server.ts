import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';

export class ListenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ListenError';
  }
}

export interface RunningServer {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export interface TlsFiles {
  cert_file: string;
  key_file: string;
}

function readTls(tls: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ListenError(`cannot read the TLS ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  };
  return { cert: read(tls.cert_file, 'certificate'), key: read(tls.key_file, 'key') };
}

export async function listen(app: Koa, host: string, port: number, tls?: TlsFiles): Promise<RunningServer> {
  const server: Server = tls ? createTlsServer(readTls(tls), app.callback()) : createServer(app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      if (error.code === 'EADDRINUSE') reject(new ListenError(`port ${port} on ${host} is already in use (set http.port to another port)`, { cause: error }));
      else if (error.code === 'EACCES') reject(new ListenError(`not allowed to listen on ${where} (ports below 1024 need privileges)`, { cause: error }));
      else if (error.code === 'EADDRNOTAVAIL') reject(new ListenError(`address ${host} is not available on this machine`, { cause: error }));
      else reject(new ListenError(`cannot listen on ${where}: ${error.message}`, { cause: error }));
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `${tls ? 'https' : 'http'}://${shownHost}:${address.port}`,
    close(graceMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
