// Request bodies sent compressed (Content-Encoding: gzip, deflate, br or zstd, as coding
// agents send long histories): decoded on libuv's thread pool, never on the event loop,
// and never into more than the body limit (a few kilobytes of zeros can decode to
// gigabytes: the limit applies to what they decode to).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import zlib from 'node:zlib';
import { GatewayError } from '../errors.ts';
import { readBody, tooLargeError } from './read-body.ts';

type Decoder = (input: Buffer, options: { maxOutputLength: number }, callback: (error: Error | null, result: Buffer) => void) => void;

/** zstd is in node:zlib from Node.js 22.15 and 23.8 on. */
const zstdDecompress = (zlib as unknown as { zstdDecompress?: Decoder }).zstdDecompress;

const DECODERS: ReadonlyMap<string, Decoder | undefined> = new Map<string, Decoder | undefined>([
  ['gzip', zlib.gunzip],
  ['x-gzip', zlib.gunzip],
  ['deflate', zlib.inflate],
  ['br', zlib.brotliDecompress],
  ['zstd', zstdDecompress],
]);

function decode(decoder: Decoder, input: Buffer, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    decoder(input, { maxOutputLength: maxBytes }, (error, result) => (error === null ? resolve(result) : reject(error)));
  });
}

/** The codings a Content-Encoding header lists, in the order they were applied. */
function codingsOf(headers: IncomingHttpHeaders): string[] {
  const value = headers['content-encoding'];
  if (value === undefined) return [];
  return value
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
}

/** Whether the body must be decoded before it is read. */
export function isEncoded(headers: IncomingHttpHeaders): boolean {
  return codingsOf(headers).length > 0;
}

/** A body the gateway reads itself (a create request, a conversation), decoded if it
 * was sent compressed; both the bytes received and the bytes decoded are bounded. */
export async function readRequestBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const body = await readBody(req, maxBytes);
  return isEncoded(req.headers) ? decodeBody(body, req.headers, maxBytes) : body;
}

/** The body as sent before its Content-Encoding was applied; 415 for a coding the gateway
 * cannot read, 400 for bytes that do not decode, 413 past `maxBytes` decoded. */
export async function decodeBody(body: Buffer, headers: IncomingHttpHeaders, maxBytes: number): Promise<Buffer> {
  let decoded = body;
  // Codings are listed in the order they were applied: undone last first.
  for (const coding of codingsOf(headers).reverse()) {
    const decoder = DECODERS.get(coding);
    if (decoder === undefined) {
      const why = DECODERS.has(coding) ? ` (zstd needs Node.js 22.15 or later; this gateway runs on ${process.version})` : '';
      throw new GatewayError('unsupported_content_encoding', `Content-Encoding '${coding.slice(0, 40)}' is not supported${why}: send gzip, deflate, br or zstd, or no encoding.`);
    }
    try {
      decoded = await decode(decoder, decoded, maxBytes);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLargeError(maxBytes, 'decoded');
      throw new GatewayError('invalid_request', `The request body is not valid ${coding} data (Content-Encoding: ${coding}).`, { cause: error });
    }
  }
  return decoded;
}
