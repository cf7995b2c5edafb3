// Argument helpers shared by the subcommands: one usage error (exit 2) and one option walker, so every command
// takes `--name value`, `--name=value` and positional arguments the same way.

export const DEFAULT_AUDIT_DIR = './sluice-data/audit';

export function usage(message: string): Error {
  return Object.assign(new Error(`${message} (see sluice --help)`), { exitCode: 2 });
}

/**
 * Calls `on` for each argument: `name` is the option (`--since`) or the bare argument, `value()` takes the option's
 * value (after `=`, else the next argument) and throws a usage error when there is none.
 */
export function eachArg(argv: readonly string[], on: (name: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    on(name, () => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (!v) throw usage(`${name} needs a value`);
      return v;
    });
  }
}

/** The usage error for an argument no command branch took. */
export function unexpected(a: string): Error {
  return usage(a.startsWith('-') ? `unknown option ${a}` : `unexpected argument ${a}`);
}
