// The --config file: the same settings as the flags, for deployments that would rather not
// pass thirty of them. YAML (.yaml, .yml, or JSON, which is YAML) or TOML (.toml), keyed by
// flag name (`llm-api-base`, or `llm_api_base`, as TOML users write keys); a value is a
// string, a number, a boolean, or a list (for list settings: several replicas, CORS
// origins). Every value is read as the flag's text would be, by the one parser of each kind
// (values.ts), so the file, the environment and the flags cannot drift apart; flags and
// environment variables win over the file.
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './config-error.ts';
import { FLAGS_BY_NAME } from './flags.ts';
import { suggestFlag } from './suggest-flag.ts';

/** The file's settings as flag texts, by flag name. */
export function parseConfigFile(path: string, text: string): Map<string, string> {
  const lower = path.toLowerCase();
  let document: unknown;
  try {
    if (lower.endsWith('.toml')) document = parseToml(text);
    else if (lower.endsWith('.yaml') || lower.endsWith('.yml') || lower.endsWith('.json')) document = parseYaml(text);
    else throw new ConfigError(`--config ${path}: the file must end in .yaml, .yml, .json or .toml`);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--config ${path} is not valid ${lower.endsWith('.toml') ? 'TOML' : 'YAML'}: ${firstLine(error)}`);
  }
  if (document === null || document === undefined) return new Map();
  if (typeof document !== 'object' || Array.isArray(document)) throw new ConfigError(`--config ${path}: expected settings by flag name (llm-api-base: ..., db-url: ...)`);
  const values = new Map<string, string>();
  for (const [key, value] of Object.entries(document)) {
    const name = key.replace(/_/g, '-');
    if (name === 'config') throw new ConfigError(`--config ${path}: a config file cannot name another (config)`);
    if (!FLAGS_BY_NAME.has(name)) {
      const suggestion = suggestFlag(name);
      throw new ConfigError(`--config ${path}: unknown setting "${key}"${suggestion !== undefined && suggestion !== 'serve' ? ` (did you mean ${suggestion}?)` : ''}`);
    }
    const flagText = asFlagText(value);
    if (flagText === undefined) throw new ConfigError(`--config ${path}: ${key} must be a string, a number, a boolean or a list of them`);
    if (flagText !== null) values.set(name, flagText);
  }
  return values;
}

/** A value as it would be typed after the flag; null for a setting left empty (its default). */
function asFlagText(value: unknown): string | null | undefined {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    const parts = value.map(asFlagText);
    return parts.every((part): part is string => typeof part === 'string') ? parts.join(',') : undefined;
  }
  return undefined;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
