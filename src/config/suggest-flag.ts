// "did you mean ...?" for a flag the gateway does not know: the usual mistakes first
// (vLLM's --port and --host, which outside `serve` mean nothing to the gateway), then the
// closest known flag by edit distance.
import { FLAG_SPECS } from './flags.ts';

/** Flags people bring from vLLM's or uvicorn's command line. */
const USUAL_MISTAKES: Readonly<Record<string, string>> = {
  port: 'gateway-port',
  host: 'gateway-host',
  'api-key': 'api-keys',
  'max-model-len': 'serve',
  model: 'serve',
};

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** The flag (without dashes) a mistyped `name` most likely meant, or `serve` for a vLLM
 * option; undefined when nothing is close. */
export function suggestFlag(name: string): string | undefined {
  const usual = USUAL_MISTAKES[name];
  if (usual !== undefined && (usual === 'serve' || FLAG_SPECS.some((spec) => spec.name === usual))) return usual;
  let best: { name: string; distance: number } | undefined;
  for (const spec of FLAG_SPECS) {
    const d = distance(name, spec.name);
    if (best === undefined || d < best.distance) best = { name: spec.name, distance: d };
  }
  // Close enough to be a typo: a third of the name at most.
  return best !== undefined && best.distance <= Math.max(1, Math.floor(name.length / 3)) ? best.name : undefined;
}

/** The one-line error for an unknown flag outside `serve`. */
export function unknownFlagMessage(name: string): string {
  const suggestion = suggestFlag(name);
  if (suggestion === 'serve') return `unknown option --${name}: vLLM's options go after \`serve <model>\` (see --help)`;
  if (suggestion !== undefined) return `unknown option --${name} (did you mean --${suggestion}?)`;
  return `unknown option --${name} (see --help)`;
}
