// The virtual browsers' HTTP: node:http over keep-alive connections (a load driver on fetch spends
// more of the machine's two cores on itself than on the service), one cookie jar per browser that
// keeps cookies the way a browser does (RFC 6265 domain and path matching, expiry), and redirects
// followed by the caller, one hop at a time, so every hop is timed on its own.
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The Location header resolved against the request URL. */
  location: URL | undefined;
}

export class HttpError extends Error {
  readonly kind: string;
  /** Whether the request went out on a kept-alive connection used before. */
  reusedSocket = false;
  constructor(kind: string, message: string) {
    super(message);
    this.kind = kind;
  }
}

interface Cookie {
  name: string;
  value: string;
  host: string;
  path: string;
  expires: number;
}

/** A fresh browser's cookies: host-only cookies, matched by path, dropped when they expire. */
export class CookieJar {
  readonly #cookies: Cookie[] = [];

  header(url: URL): string | undefined {
    const now = Date.now();
    const pairs = this.#cookies.filter((c) => c.host === url.host && c.expires > now && pathMatches(url.pathname, c.path)).map((c) => `${c.name}=${c.value}`);
    return pairs.length ? pairs.join('; ') : undefined;
  }

  store(url: URL, setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie: Cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), host: url.host, path: defaultPath(url.pathname), expires: Infinity };
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=');
        const value = rest.join('=');
        const name = key.toLowerCase();
        if (name === 'path' && value.startsWith('/')) cookie.path = value;
        else if (name === 'expires') cookie.expires = Math.min(cookie.expires, Date.parse(value));
        else if (name === 'max-age') cookie.expires = Date.now() + Number(value) * 1000;
      }
      const index = this.#cookies.findIndex((c) => c.name === cookie.name && c.host === cookie.host && c.path === cookie.path);
      if (index >= 0) this.#cookies.splice(index, 1);
      if (cookie.expires > Date.now()) this.#cookies.push(cookie);
    }
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function defaultPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  form?: Record<string, string>;
  jar?: CookieJar;
  timeoutMs: number;
}

export class Http {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

  /**
   * A kept-alive connection the server closed just as it was reused fails at once: the request is
   * sent again on a new one, as browsers do, and not counted as an error of the service.
   */
  async request(url: URL, options: RequestOptions): Promise<Reply> {
    try {
      return await this.#send(url, options);
    } catch (error) {
      if (!(error instanceof HttpError) || !error.reusedSocket || !['ECONNRESET', 'EPIPE'].includes(error.kind)) throw error;
      return this.#send(url, options);
    }
  }

  #send(url: URL, options: RequestOptions): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    const cookie = options.jar?.header(url);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (options.form) {
      body = new URLSearchParams(options.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(url, { method: options.method ?? (body ? 'POST' : 'GET'), headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(new HttpError((error as NodeJS.ErrnoException).code ?? 'response_error', error.message)));
        res.on('end', () => {
          options.jar?.store(url, res.headers['set-cookie']);
          const location = res.headers.location;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), location: location ? new URL(location, url) : undefined });
        });
      });
      req.setTimeout(options.timeoutMs, () => req.destroy(new HttpError('timeout', `no answer within ${options.timeoutMs} ms`)));
      req.on('error', (error) => {
        const failure = error instanceof HttpError ? error : new HttpError((error as NodeJS.ErrnoException).code ?? 'request_error', error.message);
        failure.reusedSocket = req.reusedSocket;
        reject(failure);
      });
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
