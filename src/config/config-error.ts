/** A setting that cannot be used as given: the command prints the message and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
