// Reasoning a client carries for the gateway: `include: ["reasoning.encrypted_content"]`
// returns each reasoning item with `encrypted_content`, its reasoning sealed (AES-256-GCM,
// under a key derived from --state-secret); a stateless client (Codex, store: false) sends
// the item back in its next input and the gateway unseals it, so the model reads its own
// reasoning again without the gateway keeping anything. The tenant is bound into the seal:
// an item sealed for one tenant does not open for another. Gateways that share the secret
// open each other's items; anything altered, or sealed by anyone else (OpenAI's own
// encrypted reasoning included), is refused with a 400.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.ts';

type Json = Record<string, unknown>;

/** The first byte of a sealed item: the format, so that a later one can be told apart. */
const FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_INFO = 'responses-gateway reasoning.encrypted_content v1';

/** The reasoning of an item, as sealed: what vLLM needs to read it again. */
export interface SealedReasoning {
  readonly summary: readonly unknown[];
  readonly content: readonly unknown[];
}

export class ReasoningSeal {
  readonly #key: Buffer;

  constructor(secret: string) {
    this.#key = Buffer.from(hkdfSync('sha256', secret, 'responses-gateway', KEY_INFO, 32));
  }

  /** The item's reasoning (its summary and content), sealed for the tenant. */
  seal(tenant: string, item: Readonly<Json>): string {
    const plain: SealedReasoning = {
      summary: Array.isArray(item['summary']) ? item['summary'] : [],
      content: Array.isArray(item['content']) ? item['content'] : [],
    };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(tenant));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(plain)), cipher.final()]);
    return Buffer.concat([Buffer.of(FORMAT_V1), iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  /** The reasoning sealed in `text` for this tenant; 400 for anything else. */
  unseal(tenant: string, text: string, param: string): SealedReasoning {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length > 1 + IV_BYTES + TAG_BYTES && bytes[0] === FORMAT_V1) {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(1, 1 + IV_BYTES));
      decipher.setAAD(Buffer.from(tenant));
      decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
      try {
        const plain = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
        const parsed = JSON.parse(plain.toString('utf8')) as Json;
        if (Array.isArray(parsed['summary']) && Array.isArray(parsed['content'])) return parsed as unknown as SealedReasoning;
      } catch {
        // Altered, or sealed under another key or for another tenant: refused below.
      }
    }
    throw new GatewayError(
      'invalid_encrypted_content',
      "The encrypted content of this reasoning item could not be verified: it was altered, or sealed by another server (a gateway opens what gateways sharing its --state-secret sealed).",
      { param },
    );
  }
}
