// `sluice report [DIR] [--since T] [--until T] [--format md|json|html] [--pubkey FILE]...`: the period's report on stdout.
// Exit 0 when the log verified intact, 1 when it did not (the report says so), 2 when no report could be made.

import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SluiceError } from '../errors';
import { DEFAULT_AUDIT_DIR, eachArg, unexpected, usage } from './args';


interface ReportArgs {
  dir: string;
  since?: string;
  until?: string;
  format: string;
  pubkeys: string[];
}

function parseReportArgs(argv: readonly string[]): ReportArgs {
  const out: ReportArgs = { dir: DEFAULT_AUDIT_DIR, format: 'md', pubkeys: [] };
  let dir: string | null = null;
  eachArg(argv, (name, value) => {
    if (name === '--since') out.since = value();
    else if (name === '--until') out.until = value();
    else if (name === '--format') out.format = value();
    else if (name === '--pubkey') out.pubkeys.push(value());
    else if (name.startsWith('-') || dir !== null) throw unexpected(name);
    else dir = name;
  });
  if (dir !== null) out.dir = dir;
  return out;
}

export async function reportCommand(argv: readonly string[], version: string): Promise<void> {
  const args = parseReportArgs(argv);
  const { computeReport, parseReportTime } = await import('../report/compute.js');
  const { REPORT_FORMATS, renderReport } = await import('../report/render.js');
  const format = REPORT_FORMATS.find((f) => f === args.format);
  if (!format) throw usage(`--format ${args.format}: expected one of ${REPORT_FORMATS.join(', ')}`);
  const now = Date.now();
  const bound = (flag: string, text: string | undefined) => {
    if (text === undefined) return null;
    const ms = parseReportTime(text, now);
    if (ms === null) throw usage(`${flag} ${text}: expected an ISO 8601 date or time (2026-11-01, 2026-11-26T10:00:00Z) or a duration back from now (30m, 24h, 7d)`);
    return ms;
  };
  const since = bound('--since', args.since);
  const until = bound('--until', args.until);
  if (since !== null && until !== null && since >= until) throw usage(`--since ${args.since} is not before --until ${args.until}`);

  const dir = resolve(args.dir);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) throw usage(`no audit directory at ${dir}`);
  const { readPublicKeyDir, readPublicKeyFile } = await import('../audit/keys.js');
  const keysDir = join(dir, 'keys');
  // A key that does not load stops the report: an unverified report would read as a verified one.
  let keys;
  try {
    keys = args.pubkeys.length > 0 ? await Promise.all(args.pubkeys.map((p) => readPublicKeyFile(p))) : await readPublicKeyDir(keysDir);
  } catch (err) {
    throw Object.assign(err as Error, { exitCode: 2 });
  }
  if (keys.length === 0) throw usage(`no public key to verify the log with: pass --pubkey FILE (no .pub files in ${keysDir})`);

  let report;
  try {
    report = await computeReport({
      dir,
      since,
      until,
      publicKeys: keys,
      keysFrom: args.pubkeys.length > 0 ? 'pubkey' : 'log_dir',
      keyFiles: args.pubkeys.length > 0 ? args.pubkeys.map((p) => resolve(p)) : [keysDir],
      version,
      now,
    });
  } catch (err) {
    throw Object.assign(new SluiceError('SLUICE_AUDIT_UNREADABLE', `cannot read the audit log in ${dir}: ${(err as Error).message}`, { cause: err }), { exitCode: 2 });
  }
  process.stdout.write(renderReport(report, format));
  if (!report.verification.ok) {
    process.stderr.write(`sluice: the audit log in ${dir} did not verify (${report.verification.problems} problems); the report says so. sluice verify ${dir} names each one.\n`);
  }
  process.exitCode = report.verification.ok ? 0 : 1;
}
