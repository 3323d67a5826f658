// A TCP relay between a client and PostgreSQL that counts the client's round trips: what
// the client sends after PostgreSQL's bytes reached it may depend on them, so it starts a
// new round trip; what it sends before is pipelined with what it sent already. The relay
// hands PostgreSQL's bytes on ANSWER_DELAY_MS late, so that the rest of what the client
// wrote at once reaches the relay before any answer could have reached the client: what
// was sent together is counted together. Used by bench:pg-round-trips and by the test
// that holds the store to its round trips; bench:pg-relay sets the delay, to stand for a
// database on another machine.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Long beside the microseconds between writes a client makes at once. */
const ANSWER_DELAY_MS = 5;

export interface RoundTripRelay {
  /** `url` with its host and port turned to the relay's. */
  readonly url: string;
  /** Round trips since the last reset. */
  count(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startRoundTripRelay(databaseUrl: string, answerDelayMs = ANSWER_DELAY_MS): Promise<RoundTripRelay> {
  const target = new URL(databaseUrl);
  let count = 0;
  /** PostgreSQL has answered since the client last began a round trip. */
  let answered = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      // What the relay writes goes at once: Nagle's algorithm held each answer's last
      // bytes until the client's delayed ACK (40 ms), a wait no real network adds.
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk) => {
      if (answered) count += 1;
      answered = false;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      // Timers of one delay fire in order: the bytes keep theirs.
      setTimeout(() => {
        client.write(chunk);
        answered = true;
      }, answerDelayMs);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: url.toString(),
    count: () => count,
    reset: () => {
      count = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
