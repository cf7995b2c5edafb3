// `sluice demo [--config FILE] [--duration S]`: runs the demo (src/demo/) until Ctrl-C or for S seconds.
// A first signal stops it cleanly (in-flight requests finish, the audit log is sealed); a second exits at once.

import { eachArg, unexpected, usage } from './args';

function parseDemoArgs(argv: readonly string[]): { configFile?: string; durationS?: number } {
  const out: { configFile?: string; durationS?: number } = {};
  eachArg(argv, (name, value) => {
    if (name === '--config' || name === '-c') out.configFile = value();
    else if (name === '--duration') {
      const v = value();
      const s = Number(v);
      if (!/^\d+(\.\d+)?$/.test(v) || s <= 0) throw usage(`--duration ${v}: expected a number of seconds above 0`);
      out.durationS = s;
    } else throw unexpected(name);
  });
  return out;
}

export async function demoCommand(argv: readonly string[]): Promise<void> {
  const args = parseDemoArgs(argv);
  const { runDemo } = await import('../demo/demo.js');
  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(1);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo({ ...args, signal: stop.signal, say: (line) => process.stdout.write(`${line}\n`) });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
