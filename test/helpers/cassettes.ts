// Reads the recorded vLLM and OpenAI traffic in test/fixtures/cassettes (Apache-2.0, from
// vllm-project/agentic-api; see its NOTICE.md) for replay tests.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';

export const CASSETTE_DIR = new URL('../fixtures/cassettes/', import.meta.url).pathname;

export interface CassetteTurn {
  readonly filename: string;
  readonly request: {
    readonly method: string;
    readonly path: string;
    readonly body: Record<string, unknown>;
    readonly headers: Record<string, string>;
  };
  readonly response: {
    readonly status_code: number;
    readonly headers: Record<string, string>;
    readonly body?: Record<string, unknown>;
    readonly sse?: readonly string[];
  };
}

export interface Cassette {
  readonly name: string;
  readonly turns: readonly CassetteTurn[];
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (entry.name.endsWith('.yaml')) out.push(path);
  }
  return out.sort();
}

export function loadCassettes(): Cassette[] {
  return walk(CASSETTE_DIR).map((path) => ({
    name: relative(CASSETTE_DIR, path),
    turns: (parse(readFileSync(path, 'utf8')) as { turns: CassetteTurn[] }).turns,
  }));
}

export function loadCassette(name: string): Cassette {
  const found = loadCassettes().find((cassette) => cassette.name === name);
  if (found === undefined) throw new Error(`no cassette ${name}`);
  return found;
}

/** Whether the recording came from vLLM (bare or resp_+16 hex ids) rather than OpenAI. */
export function isVllmRecording(cassette: Cassette): boolean {
  return !cassette.name.includes('gpt-4o');
}
