// The command line of the benchmark and stress tools: `--name value` options and flags.
export interface ToolArgs {
  readonly argv: readonly string[];
  /** The value after `--name`, if given. */
  readonly option: (name: string) => string | undefined;
  /** Whether `--name` was given. */
  readonly flag: (name: string) => boolean;
}

export function toolArgs(argv: readonly string[] = process.argv.slice(2)): ToolArgs {
  return {
    argv,
    option: (name) => {
      const index = argv.indexOf(`--${name}`);
      return index === -1 ? undefined : argv[index + 1];
    },
    flag: (name) => argv.includes(`--${name}`),
  };
}
