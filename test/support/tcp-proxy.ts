// A loopback TCP proxy that a test can freeze: while frozen, nothing that happens on either side of
// a connection reaches the other (bytes, an end, an error), and no socket is closed, as when a NAT
// or a firewall forgets a connection. Each side still sees its peer's socket as open. Unfreezing
// delivers whatever was held back, in order.
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  /** The proxy's local ports towards the target, one per connection open now (a server sees them as client ports). */
  upstreamPorts(): number[];
  freeze(): void;
  unfreeze(): void;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let frozen = false;
  /** What happened while frozen, to be carried over on unfreeze. */
  let held: Array<() => void> = [];
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const relay = (event: () => void) => (frozen ? held.push(event) : event());

  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk) => relay(() => to.write(chunk)));
      from.on('end', () => relay(() => to.end()));
      from.on('error', () => relay(() => to.destroy()));
      from.on('close', () => {
        pairs.delete(pair);
        relay(() => to.destroy());
      });
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    upstreamPorts: () => [...pairs].map((p) => p.upstream.localPort).filter((p): p is number => p !== undefined),
    freeze() {
      frozen = true;
    },
    unfreeze() {
      frozen = false;
      const events = held;
      held = [];
      for (const event of events) event();
    },
    async close() {
      frozen = false;
      held = [];
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
