// Reads a request body into one Buffer, refusing more than the configured size before
// anything is sent upstream.
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';

const EMPTY = Buffer.alloc(0);

export function tooLargeError(maxBytes: number, decoded?: 'decoded'): GatewayError {
  const what = decoded === undefined ? 'The request body is' : 'The request body, decoded, is';
  return new GatewayError('request_too_large', `${what} larger than the gateway accepts (${maxBytes} bytes).`);
}

/** The declared Content-Length, or undefined for chunked or absent bodies. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const length = Number(raw);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = declaredLength(req);
  if (declared !== undefined && declared > maxBytes) return Promise.reject(tooLargeError(maxBytes));
  if (declared === 0 || req.readableEnded) return Promise.resolve(EMPTY);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > maxBytes) {
        cleanup();
        // Stop buffering; node discards the rest once the 413 is sent and the
        // connection is closed.
        req.resume();
        reject(tooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new GatewayError('invalid_request', 'The request body could not be read.', { cause: error }));
    };
    const onClose = (): void => {
      if (req.readableEnded) return;
      cleanup();
      reject(new GatewayError('invalid_request', 'The client closed the connection while sending the body.'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
