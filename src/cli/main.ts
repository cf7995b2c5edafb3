// The `sluice` command: `start` runs the appliance; `--help` and `--version` describe it.
// Later subcommands (scan, rules, verify, tail, report, ca) register in COMMANDS.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../config/load';
import { defaultConfig, type Config } from '../config/schema';
import { SluiceError } from '../errors';
import { log } from '../log';

const HELP = `sluice — AI egress inspection proxy

Usage:
  sluice start [--config FILE]   run the proxy (gateway, forward proxy, admin)
  sluice --help                  show this help
  sluice --version               print the version

The config file may also be given as SLUICE_CONFIG. Without one, Sluice runs on
embedded defaults: gateway on 127.0.0.1:8080, forward proxy on 127.0.0.1:8081,
admin (/healthz, /readyz) on 127.0.0.1:9090, data under ./sluice-data.

Point an SDK at the gateway, e.g. OPENAI_BASE_URL=http://127.0.0.1:8080/openai/v1
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

interface Parsed {
  command: string;
  config?: string;
}

function parseArgs(argv: string[]): Parsed {
  const out: Parsed = { command: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') out.command = 'help';
    else if (a === '--version' || a === '-v') out.command = 'version';
    else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (!v) throw usage('--config needs a file name');
      out.config = v;
    } else if (a.startsWith('--config=')) out.config = a.slice('--config='.length);
    else if (a.startsWith('-')) throw usage(`unknown option ${a}`);
    else if (!out.command) out.command = a;
    else throw usage(`unexpected argument ${a}`);
  }
  return out;
}

function usage(message: string): Error {
  return Object.assign(new Error(`${message}\n\n${HELP}`), { exitCode: 2 });
}

async function start(configPath: string | undefined): Promise<void> {
  const path = configPath ?? process.env.SLUICE_CONFIG;
  const config: Config = path ? await loadConfigFile(path) : defaultConfig();
  // A request may fail, the process may not: anything that escapes is logged and serving goes on.
  process.on('uncaughtException', (err) => log('error', 'uncaught exception', { code: 'SLUICE_INTERNAL', error: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { code: 'SLUICE_INTERNAL', error: String(err) }));
  // Loaded here so --help and --version work even if the native server module cannot load.
  const { startSluice } = await import('../sluice.js');
  const sluice = await startSluice({ config });
  log('info', 'sluice started', {
    version: version(),
    config: path ?? '(embedded defaults)',
    gateway: sluice.gatewayUrl,
    forward_proxy: sluice.forwardUrl,
    admin: sluice.adminUrl,
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log('warn', 'second signal, exiting now', { signal: sig });
      process.exit(1);
    }
    log('info', 'draining', { signal: sig, in_flight: sluice.relay.inFlight, grace_ms: config.limits.shutdown_grace_ms });
    sluice.stop().then(
      () => {
        log('info', 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log('error', 'shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const args = parseArgs(argv);
    switch (args.command) {
      case 'help':
      case '':
        process.stdout.write(HELP);
        if (!args.command) process.exitCode = 2;
        return;
      case 'version':
        process.stdout.write(`${version()}\n`);
        return;
      case 'start':
        await start(args.config);
        return;
      default:
        throw usage(`unknown command "${args.command}"`);
    }
  } catch (err) {
    const code = err instanceof SluiceError ? err.code : undefined;
    process.stderr.write(`sluice: ${code ? `${code}: ` : ''}${(err as Error).message}\n`);
    process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  }
}
