// The command line of the benchmark and stress tools: `--name value` options and flags.
export interface ToolArgs {
  /** The arguments before a lone `--`. */
  readonly argv: readonly string[];
  /** Those after it: the gateway's own flags, for the tools that start one. */
  readonly passthrough: readonly string[];
  /** The value after `--name`, if given. */
  readonly option: (name: string) => string | undefined;
  /** Whether `--name` was given. */
  readonly flag: (name: string) => boolean;
}

export function toolArgs(all: readonly string[] = process.argv.slice(2)): ToolArgs {
  const dashes = all.indexOf('--');
  const argv = dashes === -1 ? all : all.slice(0, dashes);
  return {
    argv,
    passthrough: dashes === -1 ? [] : all.slice(dashes + 1),
    option: (name) => {
      const index = argv.indexOf(`--${name}`);
      return index === -1 ? undefined : argv[index + 1];
    },
    flag: (name) => argv.includes(`--${name}`),
  };
}
