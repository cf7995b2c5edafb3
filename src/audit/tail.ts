// `sluice tail`: prints audit records in sequence order, one readable line each or the raw JSON, optionally
// filtered; with -f it follows the live segment across rotation like `tail -F`, printing complete lines only.

import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { RECORD_PREFIX, listSegments, readSegmentLines, segmentPath, type SegmentName } from './segments';

export interface TailOptions {
  dir: string;
  follow: boolean;
  json: boolean;
  filters: Filter[];
}

/** `--filter a.b=value`: the record's value at the dotted path (any element, through arrays) equals `value`. */
export interface Filter {
  path: string[];
  value: string;
}

const DEFAULT_AUDIT_DIR = './sluice-data/audit';
const POLL_MS = 200;
/** Lines are read and printed a page at a time, so a large segment never sits in memory whole. */
const PAGE_BYTES = 1 << 20;

/** Parses `[-f] [DIR] [--filter a.b=value]... [--json]`; throws a usage message. */
export function parseTailArgs(argv: readonly string[]): TailOptions {
  const opts: TailOptions = { dir: DEFAULT_AUDIT_DIR, follow: false, json: false, filters: [] };
  let dir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-f' || a === '--follow') opts.follow = true;
    else if (a === '--json') opts.json = true;
    else if (a === '--filter' || a.startsWith('--filter=')) {
      const v = a === '--filter' ? argv[++i] : a.slice('--filter='.length);
      if (v === undefined) throw new Error('--filter needs field=value');
      opts.filters.push(parseFilter(v));
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (dir === null) dir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (dir !== null) opts.dir = dir;
  return opts;
}

function parseFilter(s: string): Filter {
  const eq = s.indexOf('=');
  const path = eq > 0 ? s.slice(0, eq).split('.') : [];
  if (path.length === 0 || path.some((p) => p === '')) throw new Error(`--filter ${s}: expected field=value, e.g. policy.decision=block or identity.subject=alice`);
  return { path, value: s.slice(eq + 1) };
}

/** Runs the command on this process's stdout until done, or, with -f, until SIGINT/SIGTERM or stdout closes. */
export async function tail(opts: TailOptions): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A reader that went away (`| head`) ends the command quietly, as it does `tail`.
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`sluice: tail: stdout: ${err.message}\n`);
    stop.abort();
  };
  process.stdout.on('error', onError);
  try {
    await new Tail(opts, stop.signal).run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

class Tail {
  readonly #opts: TailOptions;
  readonly #signal: AbortSignal;

  constructor(opts: TailOptions, signal: AbortSignal) {
    this.#opts = opts;
    this.#signal = signal;
  }

  async run(): Promise<void> {
    const { dir, follow } = this.#opts;
    try {
      if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message;
      throw new Error(`${dir}: ${why}; the audit log is data_dir/audit (${DEFAULT_AUDIT_DIR} by default)`, { cause: err });
    }
    const segments = await listSegments(dir);
    if (!follow) {
      for (const s of segments) await this.#drain(s, 0);
      return;
    }
    // Following starts at the live segment, as `tail -f` starts near the end; without -f every record prints.
    await this.#follow(segments.at(-1) ?? null);
  }

  /** Prints the complete lines of `segment` from `from`; returns the offset after the last one. */
  async #drain(segment: SegmentName, from: number): Promise<number> {
    let offset = from;
    while (!this.#signal.aborted) {
      let page: Awaited<ReturnType<typeof readSegmentLines>>;
      try {
        page = await readSegmentLines(segmentPath(this.#opts.dir, segment), offset, PAGE_BYTES);
      } catch (err) {
        // Removed by retention while being read: nothing more to print from it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        throw err;
      }
      if (page.lines.length === 0) break;
      let text = '';
      for (const line of page.lines) {
        const shown = this.#render(line.text);
        if (shown !== null) text += `${shown}\n`;
      }
      if (text) await this.#write(text);
      offset = page.end;
    }
    return offset;
  }

  async #follow(start: SegmentName | null): Promise<void> {
    let current = start;
    let offset = 0;
    let ino = current ? ((await this.#stat(current))?.ino ?? null) : null;
    while (!this.#signal.aborted) {
      if (current === null) {
        current = (await listSegments(this.#opts.dir))[0] ?? null;
        ino = current ? ((await this.#stat(current))?.ino ?? null) : null;
      }
      if (current !== null) {
        const st = await this.#stat(current);
        if (st && st.ino !== ino) {
          // A new file under the same name: read it from its start, as `tail -F` does.
          process.stderr.write(`sluice tail: ${current.file} was replaced; reading it from the start\n`);
          ino = st.ino;
          offset = 0;
        } else if (st && st.size < offset) {
          process.stderr.write(`sluice tail: ${current.file} was truncated; reading it from the start\n`);
          offset = 0;
        }
        if (st) offset = await this.#drain(current, offset);
        const next = (await listSegments(this.#opts.dir)).find((s) => s.file > current!.file);
        if (next) {
          // The writer may have appended its last lines just before it rotated: drain once more, then move on.
          if (st) await this.#drain(current, offset);
          current = next;
          offset = 0;
          ino = (await this.#stat(next))?.ino ?? null;
          continue;
        }
      }
      await sleep(POLL_MS, undefined, { signal: this.#signal }).catch(() => undefined);
    }
  }

  /** One line of output for a record line, or null for checkpoints and records the filters exclude. */
  #render(line: string): string | null {
    if (!line.startsWith(RECORD_PREFIX)) return null;
    const { json, filters } = this.#opts;
    if (json && filters.length === 0) return line;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      // Damage is for `sluice verify` to name; here the line is shown as it is, unless a filter asks for fields.
      return filters.length === 0 ? line : null;
    }
    if (!filters.every((f) => matches(record, f))) return null;
    return json ? line : formatRecord(record as Record<string, unknown>);
  }

  async #write(text: string): Promise<void> {
    if (this.#signal.aborted) return;
    if (!process.stdout.write(text)) await once(process.stdout, 'drain', { signal: this.#signal }).catch(() => undefined);
  }

  async #stat(s: SegmentName): Promise<{ ino: number; size: number } | null> {
    return stat(segmentPath(this.#opts.dir, s)).then(
      (st) => ({ ino: st.ino, size: st.size }),
      () => null,
    );
  }
}

/** Values at `path` in `v`. Keys may hold dots themselves (OTel's flat `gen_ai.request.model`), so every split is tried. */
function valuesAt(v: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return Array.isArray(v) ? v : [v];
  if (Array.isArray(v)) return v.flatMap((item) => valuesAt(item, path));
  if (!v || typeof v !== 'object') return [];
  const out: unknown[] = [];
  for (let k = path.length; k > 0; k--) {
    const key = path.slice(0, k).join('.');
    if (Object.hasOwn(v, key)) out.push(...valuesAt((v as Record<string, unknown>)[key], path.slice(k)));
  }
  return out;
}

function matches(record: unknown, filter: Filter): boolean {
  return valuesAt(record, filter.path).some((x) => (typeof x !== 'object' || x === null) && String(x) === filter.value);
}

/**
 * `TIME #SEQ TYPE DECISION [response:DECISION] [OUTCOME] subject=… route=… PROVIDER/HOST model=… status=…
 * findings=N[categories] LATENCYms` (docs/audit-format.md), each part only when the record has it: records of
 * other types, and exchanges that ended early, lack most of them.
 */
function formatRecord(r: Record<string, unknown>): string {
  const parts: string[] = [];
  const add = (v: string | null, label = '') => {
    if (v !== null) parts.push(label + v);
  };
  add(text(r.time));
  add(text(r.seq), '#');
  add(text(r.type));
  add(text(at(r.policy, 'decision')));
  add(text(at(at(r.policy, 'response'), 'decision')), 'response:');
  const outcome = text(r.outcome);
  // `completed` is the rule and `blocked` repeats the decision; the other outcomes say what went wrong.
  if (outcome !== 'completed' && outcome !== 'blocked') add(outcome);
  add(text(at(r.identity, 'subject')), 'subject=');
  add(text(r.route), 'route=');
  const provider = text(at(r.destination, 'provider'));
  const host = text(at(r.destination, 'host'));
  add(provider && host ? `${provider}/${host}` : (provider ?? host));
  add(text(r['gen_ai.request.model']), 'model=');
  add(text(at(r.response, 'status')), 'status=');
  add(findings(r), 'findings=');
  const ms = at(r.latency_ms, 'total');
  if (typeof ms === 'number') parts.push(`${Math.round(ms * 10) / 10}ms`);
  return parts.join(' ');
}

/** `3[secret,pii.email]`: request, response and tool-argument findings, categories de-duplicated; null for a record with no request. */
function findings(r: Record<string, unknown>): string | null {
  if (!at(r, 'request')) return null;
  const all = valuesAt(r, ['request', 'findings']).concat(
    valuesAt(r, ['response', 'findings']),
    valuesAt(r, ['response', 'tool_calls', 'argument_findings']),
  );
  const categories = [...new Set(all.map((f) => text(at(f, 'category'))).filter((c): c is string => c !== null))];
  return categories.length > 0 ? `${all.length}[${categories.join(',')}]` : String(all.length);
}

function at(v: unknown, key: string): unknown {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v === '' ? null : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}
