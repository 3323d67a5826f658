// What the access log says of one request: known fields, none of them a secret.
export interface AccessRecord {
  readonly requestId: string;
  readonly method: string;
  /** Path only: a query string may hold what does not belong in a log. */
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly bytesOut: number;
  readonly streamed: boolean;
  readonly upstreamStatus: number | undefined;
  readonly errorCode: string | undefined;
}
