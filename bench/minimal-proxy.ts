// The floor, for comparison only: the least a node:http + undici proxy does (read the
// body, dispatch it, relay status, headers and body back). No routing, no logging, no
// metrics, no normalization. Takes the gateway's --llm-api-base and --gateway-port.
import { createServer } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const argv = process.argv.slice(2);
const flag = (name: string): string => argv[argv.indexOf(`--${name}`) + 1] ?? '';
const pool = new Pool(flag('llm-api-base'), { connections: null, pipelining: 1, keepAliveTimeout: 4_000 });

createServer({ noDelay: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(controller, status) {
        res.writeHead(status, ((controller.rawHeaders ?? []) as Buffer[]).map((part) => part.toString()));
      },
      onResponseData(controller, chunk) {
        if (!res.write(chunk)) {
          controller.pause();
          res.once('drain', () => controller.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError() {
        res.destroy();
      },
    };
    pool.dispatch({ method: req.method ?? 'GET', path: req.url ?? '/', headers: ['content-type', 'application/json'], body: Buffer.concat(chunks) }, handler);
  });
}).listen(Number(flag('gateway-port')), '127.0.0.1');
