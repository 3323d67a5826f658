// vLLM's error answer (an error status), read as the error object it holds: OpenAI's
// nested `{"error": {...}}`, vLLM's flat `{type, code, message, param}`, or a body that is
// not JSON, which becomes the message.
type ErrorFields = Record<string, unknown>;

function isObject(value: unknown): value is ErrorFields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function upstreamErrorOf(body: string): ErrorFields {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isObject(parsed)) {
      if (isObject(parsed['error'])) return parsed['error'];
      if (typeof parsed['error'] === 'string') return { message: parsed['error'] };
      return parsed;
    }
  } catch {
    // Not JSON: the text is the message.
  }
  return { message: body.slice(0, 1_000) || 'The model server refused the request.', code: 'upstream_error' };
}
