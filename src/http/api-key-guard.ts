// The gateway's own API keys (--api-keys): who may call /v1/*. Keys are kept as SHA-256
// digests and a candidate is compared with every one of them in constant time, so the
// answer's timing tells nothing about any key.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ApiKeySource } from '../config/load-config.ts';
import { GatewayError } from '../errors.ts';

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class ApiKeyLoadError extends Error {
  override name = 'ApiKeyLoadError';
}

function readKeyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new ApiKeyLoadError(`cannot read the --api-keys file ${path} (${typeof code === 'string' ? code : 'error'})`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
  if (keys.length === 0) throw new ApiKeyLoadError(`the --api-keys file ${path} holds no key`);
  return keys;
}

export class ApiKeyGuard {
  readonly #source: ApiKeySource;
  #digests: Buffer[] = [];

  /** Throws ApiKeyLoadError when a key file cannot be read. */
  constructor(source: ApiKeySource) {
    this.#source = source;
    this.#digests = this.#load();
  }

  get enabled(): boolean {
    return this.#source.kind !== 'none';
  }

  /** How many keys are in force (for the log). */
  get size(): number {
    return this.#digests.length;
  }

  #load(): Buffer[] {
    switch (this.#source.kind) {
      case 'none':
        return [];
      case 'list':
        return this.#source.keys.map(digest);
      case 'file':
        return readKeyFile(this.#source.path).map(digest);
    }
  }

  /** Re-reads a key file (SIGHUP). On failure the keys in force stay, and the error is thrown. */
  reload(): void {
    this.#digests = this.#load();
  }

  /** Checks the request's Authorization header; throws the 401 to send when it fails. */
  check(rawHeaders: readonly string[]): void {
    let authorization: string | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      if (name.length === 13 && name.toLowerCase() === 'authorization') {
        authorization = rawHeaders[i + 1];
        break;
      }
    }
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) {
      throw new GatewayError(
        'invalid_api_key',
        "You didn't provide an API key. Send it as an Authorization header: 'Authorization: Bearer YOUR_KEY'.",
      );
    }
    const candidate = digest(match[1] as string);
    let found = false;
    for (const known of this.#digests) found = timingSafeEqual(candidate, known) || found;
    if (!found) throw new GatewayError('invalid_api_key', 'Incorrect API key provided.');
  }
}
