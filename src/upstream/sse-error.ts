// The SSE `error` event, in the nested form OpenAI sends and its SDKs accept:
// event: error / data: {"type":"error","error":{type,code,message,param},"sequence_number":N}
import { toErrorObject } from '../errors.ts';

export function renderSseError(error: unknown, sequenceNumber: number | undefined): string {
  const payload: Record<string, unknown> = { type: 'error', error: toErrorObject(error) };
  if (sequenceNumber !== undefined) payload['sequence_number'] = sequenceNumber;
  return `event: error\ndata: ${JSON.stringify(payload)}\n\n`;
}
