// Ids the gateway hands out: OpenAI's prefixes, then 32 hex digits that sort by time
// (48 bits of milliseconds, 16 bits of a per-process counter, 64 random bits), so they
// are unique across processes and machines without coordination, and time-ordered.
import { randomBytes } from 'node:crypto';

export const ID_PREFIX = {
  response: 'resp_',
  conversation: 'conv_',
  message: 'msg_',
  reasoning: 'rs_',
  function_call: 'fc_',
  function_call_output: 'fco_',
} as const;

/** Prefixes of OpenAI's other item types; anything else gets item_. */
const ITEM_PREFIXES: Record<string, string> = {
  message: ID_PREFIX.message,
  reasoning: ID_PREFIX.reasoning,
  function_call: ID_PREFIX.function_call,
  function_call_output: ID_PREFIX.function_call_output,
  web_search_call: 'ws_',
  file_search_call: 'fs_',
  computer_call: 'cu_',
  computer_call_output: 'cuo_',
  code_interpreter_call: 'ci_',
  image_generation_call: 'ig_',
  local_shell_call: 'lsh_',
  local_shell_call_output: 'lsho_',
  mcp_call: 'mcp_',
  mcp_list_tools: 'mcpl_',
  mcp_approval_request: 'mcpr_',
  mcp_approval_response: 'mcpa_',
  custom_tool_call: 'ctc_',
  custom_tool_call_output: 'ctco_',
  compaction: 'cmp_',
};

const RANDOM_POOL_BYTES = 8 * 512;
let pool = randomBytes(RANDOM_POOL_BYTES);
let poolOffset = 0;
let lastMs = 0;
let counter = 0;

function randomHex16(): string {
  if (poolOffset >= RANDOM_POOL_BYTES) {
    pool = randomBytes(RANDOM_POOL_BYTES);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + 8);
  poolOffset += 8;
  return hex;
}

export function newId(prefix: string): string {
  const ms = Date.now();
  if (ms === lastMs) counter = (counter + 1) & 0xffff;
  else {
    lastMs = ms;
    counter = 0;
  }
  return prefix + ms.toString(16).padStart(12, '0') + counter.toString(16).padStart(4, '0') + randomHex16();
}

export function itemIdPrefix(type: string): string {
  return ITEM_PREFIXES[type] ?? 'item_';
}

const ID_BODY = /^[A-Za-z0-9_-]{1,200}$/;

/** Whether `id` looks like an id with this prefix (it may still not exist). */
export function hasIdShape(id: string, prefix: string): boolean {
  return id.startsWith(prefix) && ID_BODY.test(id.slice(prefix.length));
}
