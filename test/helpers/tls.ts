// An HTTPS server with the self-signed certificate in test/fixtures/tls, answering the
// two GETs a gateway needs to show it got through: /health and /v1/models.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const TLS_DIR = new URL('../fixtures/tls/', import.meta.url).pathname;
/** The certificate (for 127.0.0.1), which is also its own CA: NODE_EXTRA_CA_CERTS takes it. */
export const TLS_CERT_FILE = `${TLS_DIR}self-signed.crt`;

export async function startTlsServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer({ cert: readFileSync(TLS_CERT_FILE), key: readFileSync(`${TLS_DIR}self-signed.key`) }, (req, res) => {
    const body = req.url === '/v1/models' ? { object: 'list', data: [{ id: 'm', object: 'model' }] } : {};
    res.writeHead(req.url === '/v1/models' || req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
