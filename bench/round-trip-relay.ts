// A TCP relay between a client and PostgreSQL that counts the client's round trips: what
// the client sends after PostgreSQL's bytes reached it may depend on them, so it starts a
// new round trip; what it sends before is pipelined with what it sent already. The relay
// hands PostgreSQL's bytes on ANSWER_DELAY_MS late, so that the rest of what the client
// wrote at once reaches the relay before any answer could have reached the client: what
// was sent together is counted together. Used by bench:pg-round-trips and by the test
// that holds the store to its round trips; bench:pg-relay sets the delay, to stand for a
// database on another machine. It also counts the statements the client sends (its
// Execute and Query messages), which cost the driver and the server each their own work.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Long beside the microseconds between writes a client makes at once. */
const ANSWER_DELAY_MS = 5;

export interface RoundTripRelay {
  /** `url` with its host and port turned to the relay's. */
  readonly url: string;
  /** Round trips since the last reset. */
  count(): number;
  /** Statements sent since the last reset. */
  statements(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startRoundTripRelay(databaseUrl: string, answerDelayMs = ANSWER_DELAY_MS): Promise<RoundTripRelay> {
  const target = new URL(databaseUrl);
  let count = 0;
  let statements = 0;
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
    const messages = frontendMessages((type) => {
      if (type === EXECUTE || type === QUERY) statements += 1;
    });
    client.on('data', (chunk) => {
      if (answered) count += 1;
      answered = false;
      messages(chunk);
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
    statements: () => statements,
    reset: () => {
      count = 0;
      statements = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** The type bytes of the messages that run a statement: the extended protocol's Execute,
 * and the simple protocol's Query. */
const EXECUTE = 0x45;
const QUERY = 0x51;
/** What a startup-phase message may ask before the startup itself: no message follows it
 * until the server has answered with one byte. */
const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;

/**
 * Splits what a client sends PostgreSQL into its messages, whatever the chunks, and calls
 * `onMessage` with each one's type byte: first the startup message (a length and no type),
 * then messages of a type byte and a length.
 */
function frontendMessages(onMessage: (type: number) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let started = false;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        if (pending.length < 8) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        const code = pending.readInt32BE(4);
        started = code !== SSL_REQUEST && code !== GSSENC_REQUEST;
        pending = pending.subarray(length);
        continue;
      }
      if (pending.length < 5) return;
      const end = 1 + pending.readInt32BE(1);
      if (pending.length < end) return;
      onMessage(pending[0] as number);
      pending = pending.subarray(end);
    }
  };
}
