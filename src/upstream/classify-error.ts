// Turns an undici or socket failure into the gateway's error and a metrics kind. Each
// cause an operator fixes differently (a wrong host name, nothing listening, no route, a
// TLS mismatch, a slow server) gets its own code. Messages are client-safe: no upstream
// address, no internals; the cause goes to the log (describeCause).
import { GatewayError, type ErrorCode } from '../errors.ts';
import type { UpstreamErrorKind } from '../observability/metrics.ts';

export type ExchangePhase = 'before-headers' | 'in-body';

export interface ClassifiedUpstreamError {
  readonly kind: UpstreamErrorKind;
  readonly error: GatewayError;
  /** For the log: what an operator can do about it, when the cause says. */
  readonly hint?: string;
}

/** getaddrinfo's failures (node:dns error codes). */
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA', 'EAI_ADDRFAMILY']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);
/** OpenSSL's verification failures, as node:tls names them. */
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

function errorCode(error: unknown): string | undefined {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return errorCode(error.errors[0]);
  }
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** One line for the log: the cause's code and message, without its stack. */
export function describeCause(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeCause(error.errors[0]);
  if (!(error instanceof Error)) return String(error);
  const code = errorCode(error);
  const message = error.message.split('\n', 1)[0] as string;
  return code === undefined || message.includes(code) ? message : `${code}: ${message}`;
}

export function classifyUpstreamError(error: unknown, phase: ExchangePhase): ClassifiedUpstreamError {
  const code = errorCode(error) ?? '';
  const inBody = phase === 'in-body';
  const make = (kind: UpstreamErrorKind, gatewayCode: ErrorCode, message: string, hint?: string): ClassifiedUpstreamError => ({
    kind,
    error: new GatewayError(gatewayCode, message, { cause: error }),
    ...(hint === undefined ? {} : { hint }),
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
  if (code === 'ECONNREFUSED') {
    return make(
      'connect_refused',
      'upstream_connection_refused',
      'The model server refused the connection: nothing is listening on its port.',
      'is vLLM running, on the host and port of --llm-api-base?',
    );
  }
  if (DNS_CODES.has(code)) {
    return make(
      'dns_failure',
      'upstream_dns_failure',
      "The model server's host name could not be resolved.",
      'check the host name in --llm-api-base',
    );
  }
  if (UNREACHABLE_CODES.has(code)) {
    return make('unreachable', 'upstream_unreachable', "The model server's host cannot be reached on the network.");
  }
  if (CERTIFICATE_CODES.has(code)) {
    return make(
      'tls',
      'upstream_tls_error',
      "The model server's TLS certificate is not trusted by the gateway.",
      'for a private CA or a self-signed certificate, start the gateway with NODE_EXTRA_CA_CERTS=<its PEM file>',
    );
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return make(
      'tls',
      'upstream_tls_error',
      'The TLS handshake with the model server failed.',
      code === 'ERR_SSL_WRONG_VERSION_NUMBER'
        ? 'the server does not speak TLS: use http:// in --llm-api-base'
        : undefined,
    );
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
