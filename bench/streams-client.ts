// Opens N streams at once and holds them (for peak RSS with many open streams). Forked
// with IPC: sends {open: n} once every stream has its first bytes, ends all on 'close'.
import { Agent, request } from 'node:http';

interface Job {
  readonly url: string;
  readonly body: string;
  readonly streams: number;
  /** Extra request headers (x-sim: deltas=N makes the streams last). */
  readonly headers?: Record<string, string>;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const open: Array<() => void> = [];
let started = 0;

await new Promise<void>((resolve, reject) => {
  for (let i = 0; i < job.streams; i++) {
    const req = request(job.url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...job.headers } });
    req.on('response', (res) => {
      res.once('data', () => {
        started += 1;
        if (started === job.streams) resolve();
      });
      res.resume();
    });
    req.on('error', (error) => {
      if (started < job.streams) reject(error);
    });
    open.push(() => req.destroy());
    req.end(job.body);
  }
});
process.send?.({ open: started });
process.on('message', () => {
  for (const close of open) close();
  process.exit(0);
});
