// The concurrency-1 client: N requests one after the other on one keep-alive connection,
// timing each (and, for streams, its first body byte). Runs in its own process; prints
// one JSON line: { latencyUs: number[], ttfbUs: number[] }.
//   tsx bench/c1-client.ts '{"origin":"http://127.0.0.1:9000","path":"/v1/responses","body":"...","requests":500,"warmup":50}'
import { Client, type Dispatcher } from 'undici';

interface Job {
  readonly origin: string;
  /** POST unless said otherwise (GET sends no body). */
  readonly method?: 'GET' | 'POST';
  readonly path: string;
  readonly body: string;
  /** Bodies sent in turn instead of `body` (continuations of many chains). */
  readonly bodies?: readonly string[];
  readonly headers?: Record<string, string>;
  readonly requests: number;
  readonly warmup: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const client = new Client(job.origin, { pipelining: 1, keepAliveTimeout: 60_000 });
const headers = ['content-type', 'application/json'];
for (const [name, value] of Object.entries(job.headers ?? {})) headers.push(name, value);

const bodies = job.bodies !== undefined && job.bodies.length > 0 ? job.bodies : [job.body];
let turn = 0;

function once(): Promise<{ latencyUs: number; ttfbUs: number; status: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let firstByte: bigint | undefined;
    let status = 0;
    const handler: Dispatcher.DispatchHandler = {
      // Its presence tells undici this is a new-style handler.
      onRequestStart() {},
      onResponseStart(_controller, statusCode) {
        status = statusCode;
      },
      onResponseData() {
        firstByte ??= process.hrtime.bigint();
      },
      onResponseEnd() {
        const ended = process.hrtime.bigint();
        resolve({
          latencyUs: Number(ended - started) / 1000,
          ttfbUs: Number((firstByte ?? ended) - started) / 1000,
          status,
        });
      },
      onResponseError(_controller, error) {
        reject(error);
      },
    };
    const method = job.method ?? 'POST';
    client.dispatch({ origin: job.origin, method, path: job.path, headers, body: method === 'GET' ? null : bodies[turn++ % bodies.length] }, handler);
  });
}

const latencyUs: number[] = [];
const ttfbUs: number[] = [];
for (let i = 0; i < job.warmup + job.requests; i++) {
  const result = await once();
  if (result.status !== 200) throw new Error(`status ${result.status}`);
  if (i >= job.warmup) {
    latencyUs.push(result.latencyUs);
    ttfbUs.push(result.ttfbUs);
  }
}
await client.close();
process.stdout.write(`${JSON.stringify({ latencyUs, ttfbUs })}\n`);
