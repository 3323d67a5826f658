// `--help` text, generated from the flag table so it never falls behind.
import { FLAG_SPECS, type FlagSpec } from './flags.ts';

const GROUP_TITLES: Record<FlagSpec['group'], string> = {
  upstream: 'Upstream (vLLM)',
  serve: 'Integrated mode (serve)',
  server: 'Gateway server',
  limits: 'Limits',
  state: 'State',
  security: 'Security',
  tools: 'Tools (MCP servers)',
  output: 'Output',
};

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length > 0 ? `${line} ${word}` : word;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines.join(`\n${indent}`);
}

export function renderHelp(): string {
  const out: string[] = [
    'responses-gateway: the OpenAI Responses API in front of vLLM, with state.',
    '',
    'Usage:',
    '  responses-gateway --llm-api-base URL [options]     in front of a running vLLM',
    '  responses-gateway serve <model> [options] [vLLM flags]',
    '                                                     start vLLM and serve in front of it',
    '',
    'In serve mode, flags the gateway does not own are passed to `vllm serve` unchanged;',
    '--port (default 8000) is vLLM\'s port. Each option can also be set by the environment',
    'variable shown; a flag beats its variable.',
  ];
  const groups = new Map<FlagSpec['group'], FlagSpec[]>();
  for (const spec of FLAG_SPECS as readonly FlagSpec[]) {
    const list = groups.get(spec.group) ?? [];
    list.push(spec);
    groups.set(spec.group, list);
  }
  for (const [group, specs] of groups) {
    out.push('', `${GROUP_TITLES[group]}:`);
    for (const spec of specs) {
      const value = spec.kind === 'boolean' ? '' : ' <value>';
      const defaultText = spec.defaultValue === undefined ? '' : ` [default: ${spec.defaultValue}]`;
      out.push(`  --${spec.name}${value}  (${spec.env})`);
      out.push(`      ${wrap(spec.help + defaultText, 80, '      ')}`);
    }
  }
  out.push('', '  -h, --help      show this text', '  -v, --version   print the version', '');
  return out.join('\n');
}
