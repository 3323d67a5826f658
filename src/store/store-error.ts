// Any failure of the database becomes one client-visible error: 503 store_unavailable.
// The driver's error stays in `cause` (for the log), never in the message.
import { GatewayError } from '../errors.ts';

export function storeFailure(cause: unknown): GatewayError {
  if (cause instanceof GatewayError) return cause;
  return new GatewayError('store_unavailable', 'The response store is unavailable; try again shortly.', { cause });
}
