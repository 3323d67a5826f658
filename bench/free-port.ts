import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the kernel's range for `listen(0)` begins; Linux's default where /proc does not
 * say (other systems' ranges begin higher). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isSafeInteger(low) && low > 2048) return low;
  } catch {
    // not Linux: fall through
  }
  return 32768;
}

function listens(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port free on 127.0.0.1, for a process started later to listen on. It is taken below the
 * kernel's ephemeral range: a port that `listen(0)` handed out and we closed could be handed
 * out again to the next `listen(0)` (a gateway started with `--gateway-port 0`, a test's
 * server) before the process meant for it binds it. CI saw exactly that: a gateway listening
 * on the port `serve` then gave vLLM.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  const first = Math.max(1024, Math.min(10_000, low - 1_000));
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = first + Math.floor(Math.random() * (low - first));
    if (await listens(port)) return port;
  }
  throw new Error(`no free port found in ${first}–${low - 1}`);
}
