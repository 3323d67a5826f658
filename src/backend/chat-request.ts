// A Responses request, as the gateway would send it to vLLM, rewritten as the Chat
// Completions request of any OpenAI-compatible server (llama.cpp, Ollama, SGLang, TGI, LM
// Studio, vLLM's chat endpoint). Every field is either translated, kept on the gateway
// (state, metadata, echoes), or refused with a 400 naming it: nothing is dropped unsaid.
// Fields the Responses API does not define (sampling extensions such as top_k, min_p,
// seed, stop) pass through, as the Responses endpoint would pass them to vLLM.
import { GatewayError } from '../errors.ts';

type JsonObject = Record<string, unknown>;

/** Fields the gateway answers itself, or only echoes: never sent to the model server. */
const GATEWAY_FIELDS: ReadonlySet<string> = new Set([
  'store',
  'background',
  'previous_response_id',
  'conversation',
  'metadata',
  'service_tier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'truncation',
  'stream_options',
  'max_tool_calls',
  'context_management',
  'safety_identifier',
]);

/** The include values the chat request can serve; the others are the gateway's own. */
const LOGPROBS_INCLUDE = 'message.output_text.logprobs';

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refuse(param: string, what: string): GatewayError {
  return new GatewayError('unsupported_parameter', `${what} cannot be sent to a Chat Completions backend (--upstream-api chat).`, { param });
}

export interface ChatRequest {
  readonly body: JsonObject;
  readonly stream: boolean;
}

/** The chat request for a Responses request body; throws a 400 GatewayError naming what has no chat form. */
export function toChatRequest(request: JsonObject): ChatRequest {
  const stream = request['stream'] === true;
  const chat: JsonObject = {};
  let tools: JsonObject[] | undefined;
  let toolChoice: unknown;
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined || GATEWAY_FIELDS.has(key)) continue;
    switch (key) {
      case 'model':
        chat['model'] = value;
        break;
      case 'input':
      case 'instructions':
        break; // below, together
      case 'stream':
        if (stream) {
          chat['stream'] = true;
          // The usage comes in a last chunk only when asked for.
          chat['stream_options'] = { include_usage: true };
        }
        break;
      case 'tools':
        tools = chatTools(value);
        break;
      case 'tool_choice':
        toolChoice = value;
        break;
      case 'text':
        Object.assign(chat, responseFormat(value));
        break;
      case 'max_output_tokens':
        // max_tokens: every server reads it; max_completion_tokens only the newer ones.
        if (value !== null) chat['max_tokens'] = value;
        break;
      case 'reasoning':
        if (isObject(value) && typeof value['effort'] === 'string') chat['reasoning_effort'] = value['effort'];
        break;
      case 'include':
        if (Array.isArray(value) && value.includes(LOGPROBS_INCLUDE)) chat['logprobs'] = true;
        break;
      case 'top_logprobs':
        if (typeof value === 'number' && value > 0) {
          chat['logprobs'] = true;
          chat['top_logprobs'] = value;
        }
        break;
      case 'user':
        chat['user'] = value;
        break;
      case 'prompt':
        if (value !== null) throw refuse('prompt', 'A stored prompt template (prompt)');
        break;
      default:
        // temperature, top_p, parallel_tool_calls have the same name and meaning; the
        // Responses API defines no others, so the rest are the server's own extensions.
        chat[key] = value;
    }
  }
  // The chat API has no safety_identifier on most servers; `user` is the field they know.
  if (chat['user'] === undefined && typeof request['safety_identifier'] === 'string') chat['user'] = request['safety_identifier'];
  chat['messages'] = chatMessages(request['instructions'], request['input']);
  if (tools !== undefined && tools.length > 0) {
    const choice = chatToolChoice(toolChoice, tools);
    chat['tools'] = choice.tools;
    if (choice.toolChoice !== undefined) chat['tool_choice'] = choice.toolChoice;
  } else if (toolChoice !== undefined && toolChoice !== 'none' && toolChoice !== 'auto' && toolChoice !== null) {
    // A choice naming a tool with no tools is the client's mistake; the server says so.
    chat['tool_choice'] = chatToolChoice(toolChoice, []).toolChoice;
  }
  return { body: chat, stream };
}

// --- tools ------------------------------------------------------------------------------

function chatTools(value: unknown): JsonObject[] {
  if (!Array.isArray(value)) throw refuse('tools', 'tools that are not a list');
  return value.map((tool: unknown, index) => {
    if (!isObject(tool) || tool['type'] !== 'function') {
      const type = isObject(tool) ? String(tool['type']) : typeof tool;
      throw refuse(`tools[${index}].type`, `A tool of type ${type}`);
    }
    const fn: JsonObject = { name: tool['name'] };
    if (typeof tool['description'] === 'string') fn['description'] = tool['description'];
    fn['parameters'] = isObject(tool['parameters']) ? tool['parameters'] : { type: 'object', properties: {} };
    if (typeof tool['strict'] === 'boolean') fn['strict'] = tool['strict'];
    return { type: 'function', function: fn };
  });
}

function nameOf(tool: JsonObject): unknown {
  return isObject(tool['function']) ? tool['function']['name'] : undefined;
}

/** tool_choice in chat's shape; `allowed_tools` becomes the allowed subset of the tools
 * (the chat servers the gateway fronts have no allowed_tools) with its mode as the choice. */
function chatToolChoice(choice: unknown, tools: JsonObject[]): { tools: JsonObject[]; toolChoice: unknown } {
  if (choice === undefined || choice === null) return { tools, toolChoice: undefined };
  if (choice === 'auto' || choice === 'none' || choice === 'required') return { tools, toolChoice: choice };
  if (isObject(choice) && choice['type'] === 'function' && typeof choice['name'] === 'string') {
    return { tools, toolChoice: { type: 'function', function: { name: choice['name'] } } };
  }
  if (isObject(choice) && choice['type'] === 'allowed_tools' && Array.isArray(choice['tools'])) {
    const allowed = new Set<unknown>();
    for (const [index, entry] of (choice['tools'] as unknown[]).entries()) {
      if (!isObject(entry) || entry['type'] !== 'function') throw refuse(`tool_choice.tools[${index}]`, 'An allowed tool that is not a function');
      allowed.add(entry['name']);
    }
    const mode = choice['mode'] === 'required' ? 'required' : 'auto';
    return { tools: tools.filter((tool) => allowed.has(nameOf(tool))), toolChoice: mode };
  }
  throw refuse('tool_choice', `tool_choice ${JSON.stringify(choice)}`);
}

// --- text.format ------------------------------------------------------------------------

/** text.format as response_format; text.verbosity as chat's verbosity (servers that do
 * not know it ignore it, as vLLM ignores it in a Responses request). */
function responseFormat(text: unknown): JsonObject {
  if (!isObject(text)) return {};
  const verbosity = typeof text['verbosity'] === 'string' ? { verbosity: text['verbosity'] } : {};
  if (!isObject(text['format'])) return verbosity;
  const format = text['format'];
  return { ...verbosity, ...formatOf(format) };
}

function formatOf(format: JsonObject): JsonObject {
  switch (format['type']) {
    case 'text':
      return {};
    case 'json_object':
      return { response_format: { type: 'json_object' } };
    case 'json_schema': {
      const schema: JsonObject = { name: format['name'], schema: format['schema'] };
      if (typeof format['description'] === 'string') schema['description'] = format['description'];
      if (typeof format['strict'] === 'boolean') schema['strict'] = format['strict'];
      return { response_format: { type: 'json_schema', json_schema: schema } };
    }
    default:
      throw refuse('text.format.type', `text.format of type ${String(format['type'])}`);
  }
}

// --- input -------------------------------------------------------------------------------

/** Builds the message list: consecutive calls share one assistant message, and a reasoning
 * item rides on the assistant message that follows it (as `reasoning`, vLLM's name since
 * 0.11 and Ollama's, and `reasoning_content`, llama.cpp's, SGLang's and older vLLM's). */
class MessageList {
  readonly messages: JsonObject[] = [];
  #reasoning: string | undefined;
  /** The assistant message the next call or text joins, while no other message came. */
  #assistant: JsonObject | undefined;

  add(message: JsonObject): void {
    this.messages.push(message);
    this.#assistant = undefined;
    this.#reasoning = undefined;
  }

  reasoning(text: string): void {
    this.#reasoning = this.#reasoning === undefined ? text : this.#reasoning + text;
  }

  assistantText(text: string): void {
    const open = this.#assistant;
    if (open !== undefined && open['tool_calls'] === undefined) {
      open['content'] = (typeof open['content'] === 'string' ? open['content'] : '') + text;
      return;
    }
    this.#openAssistant(text);
  }

  call(call: JsonObject): void {
    const open = this.#assistant ?? this.#openAssistant(null);
    const calls = (open['tool_calls'] ??= []) as JsonObject[];
    calls.push(call);
  }

  #openAssistant(content: string | null): JsonObject {
    const message: JsonObject = { role: 'assistant', content };
    if (this.#reasoning !== undefined) {
      message['reasoning'] = this.#reasoning;
      message['reasoning_content'] = this.#reasoning;
    }
    this.messages.push(message);
    this.#reasoning = undefined;
    this.#assistant = message;
    return message;
  }
}

function chatMessages(instructions: unknown, input: unknown): JsonObject[] {
  const list = new MessageList();
  if (typeof instructions === 'string' && instructions.length > 0) list.add({ role: 'system', content: instructions });
  if (typeof input === 'string') {
    list.add({ role: 'user', content: input });
    return list.messages;
  }
  if (!Array.isArray(input)) return list.messages;
  input.forEach((raw: unknown, index) => {
    const param = `input[${index}]`;
    if (!isObject(raw)) throw refuse(param, 'An input item that is not an object');
    const type = raw['type'] ?? 'message';
    switch (type) {
      case 'message':
        addMessage(list, raw, param);
        return;
      case 'function_call':
        list.call({ id: raw['call_id'], type: 'function', function: { name: raw['name'], arguments: raw['arguments'] } });
        return;
      case 'function_call_output':
        list.add({ role: 'tool', tool_call_id: raw['call_id'], content: toolOutput(raw['output'], `${param}.output`) });
        return;
      case 'reasoning': {
        const text = reasoningText(raw);
        if (text.length > 0) list.reasoning(text);
        return;
      }
      default:
        throw refuse(`${param}.type`, `An input item of type ${JSON.stringify(type)}`);
    }
  });
  return list.messages;
}

function reasoningText(item: JsonObject): string {
  const fromParts = (parts: unknown): string =>
    Array.isArray(parts) ? parts.map((part: unknown) => (isObject(part) && typeof part['text'] === 'string' ? part['text'] : '')).join('') : '';
  return fromParts(item['content']) || fromParts(item['summary']);
}

function addMessage(list: MessageList, item: JsonObject, param: string): void {
  const role = item['role'];
  const content = item['content'];
  if (role === 'assistant') {
    list.assistantText(typeof content === 'string' ? content : assistantText(content, `${param}.content`));
    return;
  }
  // Chat servers know system, not developer (the gateway folds both ahead of this).
  const chatRole = role === 'developer' ? 'system' : role;
  if (chatRole !== 'user' && chatRole !== 'system') throw refuse(`${param}.role`, `A message with role ${String(role)}`);
  list.add({ role: chatRole, content: typeof content === 'string' ? content : userContent(content, `${param}.content`) });
}

function assistantText(content: unknown, param: string): string {
  if (!Array.isArray(content)) throw refuse(param, 'Message content that is neither text nor a list of parts');
  return content
    .map((part: unknown, index) => {
      if (isObject(part) && (part['type'] === 'output_text' || part['type'] === 'input_text' || part['type'] === 'refusal')) {
        return typeof part['text'] === 'string' ? part['text'] : typeof part['refusal'] === 'string' ? part['refusal'] : '';
      }
      throw refuse(`${param}[${index}].type`, `An assistant content part of type ${isObject(part) ? String(part['type']) : typeof part}`);
    })
    .join('');
}

/** A user or system message's parts: text alone becomes one string (what every server
 * takes); images and files become chat's image_url and file parts. */
function userContent(content: unknown, param: string): string | JsonObject[] {
  if (!Array.isArray(content)) throw refuse(param, 'Message content that is neither text nor a list of parts');
  const parts = content.map((part: unknown, index) => chatPart(part, `${param}[${index}]`));
  return parts.every((part) => part['type'] === 'text') ? parts.map((part) => String(part['text'])).join('') : parts;
}

function chatPart(part: unknown, param: string): JsonObject {
  if (!isObject(part)) throw refuse(param, 'A content part that is not an object');
  switch (part['type']) {
    case 'input_text':
    case 'output_text':
    case 'text':
      return { type: 'text', text: part['text'] };
    case 'input_image': {
      if (typeof part['image_url'] !== 'string') throw refuse(`${param}.file_id`, 'An image given by file_id (the chat API takes image_url)');
      const image: JsonObject = { url: part['image_url'] };
      if (typeof part['detail'] === 'string') image['detail'] = part['detail'];
      return { type: 'image_url', image_url: image };
    }
    case 'input_file': {
      if (typeof part['file_data'] !== 'string') {
        throw refuse(part['file_url'] !== undefined ? `${param}.file_url` : `${param}.file_id`, 'A file given by URL or file_id (the chat API takes file_data)');
      }
      const file: JsonObject = { file_data: part['file_data'] };
      if (typeof part['filename'] === 'string') file['filename'] = part['filename'];
      return { type: 'file', file };
    }
    default:
      throw refuse(`${param}.type`, `A content part of type ${String(part['type'])}`);
  }
}

/** A function's output: the chat API's tool message takes text. */
function toolOutput(output: unknown, param: string): string {
  if (typeof output === 'string') return output;
  if (!Array.isArray(output)) return JSON.stringify(output ?? '');
  return output
    .map((part: unknown, index) => {
      if (isObject(part) && part['type'] === 'input_text') return String(part['text']);
      throw refuse(`${param}[${index}].type`, 'A function output part that is not text');
    })
    .join('');
}
