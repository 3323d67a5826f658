// The --mcp-servers file: the operator's MCP servers by label, with the headers (tokens)
// that stay on the gateway. `${NAME}` in a header value is read from the environment, so
// the file itself need not hold a secret.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { OperatorServer } from './server-policy.ts';

const LABEL = /^[A-Za-z0-9_-]{1,64}$/;

const serverSchema = z.strictObject({
  url: z.string().regex(/^https?:\/\//i, 'must be an http(s) URL'),
  headers: z.record(z.string(), z.string()).optional(),
  description: z.string().optional(),
  require_approval: z.unknown().optional(),
  allowed_tools: z.unknown().optional(),
});

const fileSchema = z.record(z.string().regex(LABEL, 'labels are 1-64 letters, digits, _ or -'), serverSchema);

export class McpServersFileError extends Error {
  override name = 'McpServersFileError';
}

function expand(value: string, env: Readonly<Record<string, string | undefined>>, where: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const found = env[name];
    if (found === undefined) throw new McpServersFileError(`${where}: environment variable ${name} is not set`);
    return found;
  });
}

/** The file's servers; a clear error naming the file and the field when it is wrong. */
export function parseMcpServers(text: string, path: string, env: Readonly<Record<string, string | undefined>>): Map<string, OperatorServer> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new McpServersFileError(`--mcp-servers ${path}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue === undefined ? '' : issue.path.join('.');
    throw new McpServersFileError(`--mcp-servers ${path}: ${at === '' ? '' : `${at}: `}${issue?.message ?? 'invalid'}`);
  }
  const servers = new Map<string, OperatorServer>();
  for (const [label, server] of Object.entries(parsed.data)) {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(server.headers ?? {})) headers[name] = expand(value, env, `--mcp-servers ${path}: ${label}.headers.${name}`);
    servers.set(label, {
      url: server.url,
      headers,
      description: server.description,
      requireApproval: server.require_approval,
      allowedTools: server.allowed_tools,
    });
  }
  return servers;
}

/** Read once, when the gateway is assembled (a small file, before the port is open). */
export function loadMcpServers(path: string | undefined, env: Readonly<Record<string, string | undefined>>): Map<string, OperatorServer> {
  if (path === undefined) return new Map();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new McpServersFileError(`--mcp-servers ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseMcpServers(text, path, env);
}
