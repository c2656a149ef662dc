// A TCP proxy between the operator and the API server, to cut the operator's network without
// touching anyone else's. cut() is a black hole, as a broken link or a dropped route is: bytes in
// flight stop moving both ways and new connections are accepted but get no answer, so the
// operator sees stalls and timeouts, not a clean "connection refused". restore() lets everything
// flow again, connections held during the cut included.
import { createServer, connect, type Server, type Socket } from 'node:net';

/** One direction of a connection: bytes read during a cut wait in `queue` until restore(). */
class Link {
  private queue: Buffer[] = [];
  constructor(private readonly to: Socket, private readonly isCut: () => boolean) {}
  data(chunk: Buffer): void {
    if (this.isCut()) this.queue.push(chunk);
    else this.to.write(chunk);
  }
  flush(): void {
    for (const chunk of this.queue.splice(0)) this.to.write(chunk);
  }
}

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly links = new Set<Link>();
  private readonly held: Socket[] = [];
  private cutSince: number | undefined;

  constructor(private readonly target: { host: string; port: number }) {}

  /** Listens on 127.0.0.1 on a free port; returns it. */
  async start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    return address.port;
  }

  get isCut(): boolean {
    return this.cutSince !== undefined;
  }

  cut(): void {
    this.cutSince ??= Date.now();
  }

  restore(): void {
    if (this.cutSince === undefined) return;
    this.cutSince = undefined;
    for (const link of this.links) link.flush();
    for (const client of this.held.splice(0)) this.connect(client);
  }

  async stop(): Promise<void> {
    for (const s of [...this.sockets, ...this.held.splice(0)]) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    // Accepted, never answered while cut: the client's TLS handshake stalls.
    if (this.cutSince !== undefined) this.held.push(client);
    else this.connect(client);
  }

  private connect(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(upstream);
    const isCut = () => this.cutSince !== undefined;
    const up = new Link(upstream, isCut);
    const down = new Link(client, isCut);
    this.links.add(up).add(down);
    const done = () => {
      this.links.delete(up);
      this.links.delete(down);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', done);
    client.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
    client.on('data', (chunk: Buffer) => up.data(chunk));
    upstream.on('data', (chunk: Buffer) => down.data(chunk));
  }
}
