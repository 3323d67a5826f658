// Turns an undici or socket failure into the gateway's error and a metrics kind.
// Messages are client-safe: no upstream address, no internals; the cause goes to the log.
import { GatewayError } from '../errors.ts';
import type { UpstreamErrorKind } from '../observability/metrics.ts';

export type ExchangePhase = 'before-headers' | 'in-body';

export interface ClassifiedUpstreamError {
  readonly kind: UpstreamErrorKind;
  readonly error: GatewayError;
}

const REFUSED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

function errorCode(error: unknown): string | undefined {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return errorCode(error.errors[0]);
  }
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function classifyUpstreamError(error: unknown, phase: ExchangePhase): ClassifiedUpstreamError {
  const code = errorCode(error) ?? '';
  const inBody = phase === 'in-body';
  const make = (kind: UpstreamErrorKind, gatewayCode: ConstructorParameters<typeof GatewayError>[0], message: string) => ({
    kind,
    error: new GatewayError(gatewayCode, message, { cause: error }),
  });

  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return make('connect_timeout', 'upstream_timeout', 'The model server did not accept a connection in time.');
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return make('headers_timeout', 'upstream_timeout', 'The model server did not start its response in time.');
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return make(
      'idle_timeout',
      'upstream_timeout',
      inBody
        ? 'The model server stopped sending the response: no data within the idle timeout.'
        : 'The model server did not send the response body in time.',
    );
  }
  if (REFUSED_CODES.has(code)) {
    return make('connect_refused', 'upstream_unavailable', 'The model server is unavailable (connection refused).');
  }
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return make('truncated', 'upstream_stream_interrupted', 'The model server ended the response early.');
  }
  if (code.startsWith('HPE_') || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO') {
    return inBody
      ? make('invalid_response', 'upstream_stream_interrupted', 'The model server sent a malformed response.')
      : make('invalid_response', 'upstream_invalid_response', 'The model server sent a malformed response.');
  }
  if (RESET_CODES.has(code)) {
    return inBody
      ? make('reset', 'upstream_stream_interrupted', 'The model server closed the connection mid-response.')
      : make('reset', 'upstream_unavailable', 'The model server closed the connection before responding.');
  }
  return inBody
    ? make('other', 'upstream_stream_interrupted', 'The response from the model server was interrupted.')
    : make('other', 'upstream_unavailable', 'The model server could not be reached.');
}
