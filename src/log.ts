// Operational log: one JSON object per line on stderr, so journald and log shippers parse it as is.
// Exchange records belong to the audit log, not here.

export type Level = 'info' | 'warn' | 'error';

export function log(level: Level, msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
}
