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

// Random bits come from a pool turned into hex once per 512 ids, and a millisecond's hex
// is made once for the ids of that millisecond: a string slice and a concatenation an id
// (0.5 -> 0.15 µs in a micro-benchmark; an answer makes two or more). V8 makes such a
// slice a view of the pool's 8 KiB string, kept alive by an id until the id is flattened
// (hashed or serialized): 16 bytes an id at most, shared by 512.
const RANDOM_POOL_BYTES = 8 * 512;
let poolHex = randomBytes(RANDOM_POOL_BYTES).toString('hex');
let poolOffset = 0;
let lastMs = 0;
let lastMsHex = '';
let counter = 0;

function randomHex16(): string {
  if (poolOffset >= poolHex.length) {
    poolHex = randomBytes(RANDOM_POOL_BYTES).toString('hex');
    poolOffset = 0;
  }
  const hex = poolHex.slice(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return hex;
}

export function newId(prefix: string): string {
  const ms = Date.now();
  if (ms === lastMs) counter = (counter + 1) & 0xffff;
  else {
    lastMs = ms;
    lastMsHex = ms.toString(16).padStart(12, '0');
    counter = 0;
  }
  // 0x10000 | counter: four hex digits with their leading zeros, in one call.
  return prefix + lastMsHex + (0x10000 | counter).toString(16).slice(1) + randomHex16();
}

export function itemIdPrefix(type: string): string {
  return ITEM_PREFIXES[type] ?? 'item_';
}

const ID_BODY = /^[A-Za-z0-9_-]{1,200}$/;

/** Whether `id` looks like an id with this prefix (it may still not exist). */
export function hasIdShape(id: string, prefix: string): boolean {
  return id.startsWith(prefix) && ID_BODY.test(id.slice(prefix.length));
}
