// State a client carries for the gateway, sealed (AES-256-GCM, under a key derived from
// --state-secret): reasoning items returned with `encrypted_content` when a stateless
// client asks for them (include: ["reasoning.encrypted_content"]), and the summary in a
// compaction item (POST /v1/responses/compact). The client sends the item back in a later
// input and the gateway unseals it, so the model reads it again without the gateway
// keeping anything. The tenant and what the item is are bound into the seal: an item
// sealed for one tenant does not open for another, a reasoning seal is not a compaction.
// Gateways that share the secret open each other's items; anything altered, or sealed by
// anyone else (OpenAI's own encrypted items included), is refused with a 400.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.ts';

type Json = Record<string, unknown>;

/** The first byte of a sealed item: the format, so that a later one can be told apart. */
const FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_INFO = 'responses-gateway reasoning.encrypted_content v1';

/** What a sealed item holds: for vLLM to read again. */
export type SealedKind = 'reasoning' | 'compaction';

export class StateSeal {
  readonly #key: Buffer;

  constructor(secret: string) {
    this.#key = Buffer.from(hkdfSync('sha256', secret, 'responses-gateway', KEY_INFO, 32));
  }

  /** `plain` sealed for the tenant, as a `kind` item. */
  seal(tenant: string, kind: SealedKind, plain: Readonly<Json>): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(boundData(tenant, kind));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(plain)), cipher.final()]);
    return Buffer.concat([Buffer.of(FORMAT_V1), iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  /** What `text` seals for this tenant as a `kind` item; 400 for anything else. */
  unseal(tenant: string, kind: SealedKind, text: string, param: string): Json {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length > 1 + IV_BYTES + TAG_BYTES && bytes[0] === FORMAT_V1) {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(1, 1 + IV_BYTES));
      decipher.setAAD(boundData(tenant, kind));
      decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
      try {
        const plain = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
        const parsed: unknown = JSON.parse(plain.toString('utf8'));
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Json;
      } catch {
        // Altered, or sealed under another key or for another tenant: refused below.
      }
    }
    throw new GatewayError(
      'invalid_encrypted_content',
      `The encrypted content of this ${kind} item could not be verified: it was altered, or sealed by another server (a gateway opens what gateways sharing its --state-secret sealed).`,
      { param },
    );
  }
}

/** The data authenticated with each seal: who it is for, and what it is. */
function boundData(tenant: string, kind: SealedKind): Buffer {
  return Buffer.from(`${kind}\u0000${tenant}`);
}
