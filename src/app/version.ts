// This package's version: what `--version` prints and what MCP servers are told the
// client is.
import { createRequire } from 'node:module';

export function gatewayVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}
