// Child processes of a benchmark (servers under test, load targets) and its temp dir: stopped on every way out,
// so a crashed or interrupted bench leaves nothing running on the shared machine.

import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

export class Children {
  readonly all = new Set<ChildProcess>();
  tempDir: string | null = null;
  private readonly log: (msg: string) => void;
  private readonly graceMs: number;

  constructor(log: (msg: string) => void, graceMs: number) {
    this.log = log;
    this.graceMs = graceMs;
  }

  /**
   * Synchronous, so it can run in an 'exit' handler. SIGTERM by default because the children are Node roles that
   * clean up on it (a guard takes its own child, nginx or mitmdump, down with it).
   */
  killAllNow(signal: NodeJS.Signals = 'SIGTERM'): void {
    for (const c of this.all) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill(signal);
        } catch {
          // already gone
        }
      }
    }
    this.all.clear();
    if (this.tempDir) {
      try {
        rmSync(this.tempDir, { recursive: true, force: true });
      } catch {
        // best effort: it is under the OS temp dir anyway
      }
      this.tempDir = null;
    }
  }

  /** Asks each child to stop (so a profiled Sluice can write its profile), then kills what is left. */
  async stopAll(graceMs = this.graceMs): Promise<void> {
    const waits = [...this.all].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            c.kill('SIGKILL');
            resolve();
          }, graceMs);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          if (c.connected) c.send('stop');
          else c.kill('SIGTERM');
        }),
    );
    await Promise.all(waits);
    this.killAllNow();
  }

  installExitHandlers(): void {
    process.on('exit', () => this.killAllNow('SIGTERM'));
    const onSignal = (sig: NodeJS.Signals) => {
      this.log(`${sig}: stopping children`);
      this.stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('SIGHUP', onSignal);
    const onFatal = (err: unknown) => {
      this.log(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      this.stopAll().finally(() => process.exit(1));
    };
    process.on('uncaughtException', onFatal);
    process.on('unhandledRejection', onFatal);
  }

  /** The bench's own entry: exit 0 when `main` resolves; on failure log it, stop the children, exit 1. */
  runMain(main: () => Promise<void>): void {
    main().then(
      () => process.exit(0),
      (err: Error) => {
        this.log(`failed: ${err.stack ?? err.message}`);
        this.stopAll().finally(() => process.exit(1));
      },
    );
  }
}
