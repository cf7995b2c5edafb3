// Detection benchmark: Hyperscan, RE2 and a naive one-RegExp-per-rule baseline over the same corpora, same run.
// Prints one JSON line per case. All built-in rules are loaded. See bench/README.md for what each case means.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HS_FLAGS, compile, hyperscanAvailable, hyperscanVersion } from '../src/detect/hyperscan';
import { Inspector } from '../src/detect/pool';
import { Spans, collectSpans, compileRe2, toMatches } from '../src/detect/re2';
import { BUILTIN_RULES_DIR, loadRulePacks, type Rule, type RuleSet } from '../src/detect/rules';
import { Detector } from '../src/detect/scan';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const REPO = resolve(__dirname, '..', '..');
const MB = 1024 * 1024;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** Runs fn repeatedly for ~SECONDS after a short warm-up; returns seconds per call (the best of 3 slices). */
function timeIt(fn: () => unknown): number {
  for (let i = 0; i < 2; i++) fn();
  let best = Infinity;
  for (let slice = 0; slice < 3; slice++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < (SECONDS * 1000) / 3) {
      fn();
      n++;
      t = performance.now();
    }
    best = Math.min(best, (t - t0) / 1000 / n);
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Corpora, deterministic: the same bytes on every run and machine with the same node_modules.

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function walk(dir: string, exts: readonly string[], out: string[], limit: number): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    if (out.length >= limit) return;
    const p = join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(p, exts, out, limit);
    else if (exts.some((e) => n.endsWith(e)) && st.size > 2_000 && st.size < 200_000) out.push(p);
  }
}

/** ~1 MB of real source in several languages, interleaved file by file: C++, Python, JavaScript, TypeScript. */
function sourceCorpus(): { text: string; languages: string[] } {
  const sources: Array<[string, string, string[]]> = [
    ['c++', join(REPO, 'node_modules', 're2', 'vendor'), ['.cc', '.h']],
    ['python', join(REPO, 'node_modules', 'node-gyp', 'gyp'), ['.py']],
    ['javascript', join(REPO, 'node_modules', 'undici', 'lib'), ['.js']],
    ['typescript', join(REPO, 'src'), ['.ts']],
  ];
  const lists = sources.map(([lang, dir, exts]) => {
    const files: string[] = [];
    walk(dir, exts, files, 400);
    return { lang, files };
  });
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < MB; i++) {
    let added = false;
    for (const l of lists) {
      const f = l.files[i];
      if (!f || size >= MB) continue;
      const t = readFileSync(f, 'utf8');
      parts.push(t);
      size += t.length;
      added = true;
    }
    if (!added) break;
  }
  return { text: parts.join('\n').slice(0, MB), languages: lists.filter((l) => l.files.length > 0).map((l) => l.lang) };
}

const WORDS = (
  'the of and to in is was for on that with as by at from this be or an are which it not have has but were ' +
  'customer account order invoice meeting team project report quarter revenue support ticket shipment review ' +
  'please thanks regards update schedule contract renewal budget forecast policy draft summary question answer ' +
  'analysis pipeline release incident postmortem latency region cluster dashboard migration onboarding payroll'
).split(' ');

/** ~1 MB of English-like prose with a sensitive value (from the rules' own match examples) every ~1.5 KB. */
function proseCorpus(ruleSet: RuleSet): { text: string; planted: number } {
  const r = mulberry32(42);
  const plants = ruleSet.rules
    .filter((x) => x.category !== 'source_code' && x.category !== 'prompt_injection')
    .flatMap((x) => x.examples.match);
  let text = '';
  let planted = 0;
  let sinceLast = 0;
  while (text.length < MB) {
    const w = WORDS[Math.floor(r() * WORDS.length)]!;
    text += (sinceLast === 0 ? '' : r() < 0.08 ? '. ' : ' ') + w;
    sinceLast += w.length + 1;
    if (sinceLast > 1000 + r() * 1000 && plants.length > 0) {
      text += ' ' + plants[Math.floor(r() * plants.length)]! + ' ';
      planted++;
      sinceLast = 0;
    }
  }
  return { text: text.slice(0, MB), planted };
}

// ---------------------------------------------------------------------------------------------
// The naive baseline: one JavaScript RegExp per rule, each run over the whole text.

/** RE2 syntax → JS RegExp where the translation is exact; rules that do not translate are left out and counted. */
function naiveRegExps(rules: readonly Rule[]): { res: RegExp[]; skipped: string[] } {
  const res: RegExp[] = [];
  const skipped: string[] = [];
  for (const rule of rules) {
    let src = rule.pattern.replace(/\\x\{([0-9A-Fa-f]+)\}/g, '\\u{$1}');
    let flags = rule.caseless ? 'giu' : 'gu';
    const lead = /^\(\?([ims]+)\)/.exec(src);
    if (lead) {
      src = src.slice(lead[0].length);
      for (const f of lead[1]!) if (!flags.includes(f)) flags += f;
    }
    try {
      if (/\(\?[ims-]+[:)]|\\[Azpq]|\[\[:/.test(src)) throw new Error('RE2-only syntax');
      res.push(new RegExp(src, flags));
    } catch {
      skipped.push(rule.id);
    }
  }
  return { res, skipped };
}

function naiveScan(res: RegExp[], text: string): number {
  let n = 0;
  for (const re of res) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      n++;
      if (m[0].length === 0) re.lastIndex++;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// The design alternative, kept here rather than in src/: Hyperscan with start-of-match (HS_FLAG_SOM_LEFTMOST),
// reports reduced to the leftmost start per rule, then RE2 exec loops from there to the end of the text.

function somConfirm(ruleSet: RuleSet): (text: string) => unknown {
  const patterns = ruleSet.rules.map((r, id) => ({ id, pattern: r.pattern, caseless: r.caseless }));
  const res = patterns.map((p) => compileRe2(p));
  const ok: number[] = [];
  const entries = patterns.flatMap((p, i) => {
    try {
      compile([{ id: i, pattern: p.pattern, flags: HS_FLAGS.UTF8 | HS_FLAGS.SOM_LEFTMOST | (p.caseless ? HS_FLAGS.CASELESS : 0) }]);
      ok.push(i);
      return [{ id: i, pattern: p.pattern, flags: HS_FLAGS.UTF8 | HS_FLAGS.SOM_LEFTMOST | (p.caseless ? HS_FLAGS.CASELESS : 0) }];
    } catch {
      return [];
    }
  });
  const db = compile(entries);
  const always = patterns.map((_, i) => i).filter((i) => !ok.includes(i));
  const ids = patterns.map((p) => p.id);
  return (text) => {
    const bytes = Buffer.from(text, 'utf8');
    const { triples } = db.scanTriples(bytes);
    const leftmost = new Map<number, number>();
    for (let r = 0; r < triples.length; r += 3) {
      const prev = leftmost.get(triples[r]!);
      if (prev === undefined || triples[r + 1]! < prev) leftmost.set(triples[r]!, triples[r + 1]!);
    }
    for (const i of always) leftmost.set(i, 0);
    const out = new Spans();
    for (const [i, from] of leftmost) collectSpans(res[i]!, i, bytes, from, out);
    return toMatches(text, bytes, out, ids);
  };
}

// ---------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const ruleSet = await loadRulePacks([BUILTIN_RULES_DIR]);
  const hs = hyperscanAvailable();
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, hyperscan: hs ? hyperscanVersion() : null };
  emit({ case: 'setup', rules: ruleSet.rules.length, packs: ruleSet.packs.map((p) => p.name), seconds_per_case: SECONDS, ...machine });

  // Start-up cost of a worker: compile the rule set, or deserialise the main thread's compiled database.
  let t0 = performance.now();
  const hsDetector = hs ? Detector.fromRuleSet(ruleSet, { prefer: 'hyperscan' }) : undefined;
  const compileMs = performance.now() - t0;
  if (hsDetector) {
    const prebuilt = hsDetector.prebuilt()!;
    t0 = performance.now();
    Detector.fromRuleSet(ruleSet, { prefer: 'hyperscan', prebuilt });
    const deserializeMs = performance.now() - t0;
    emit({ case: 'worker_start', compile_ms: round(compileMs), deserialize_ms: round(deserializeMs), database_bytes: (prebuilt.main.database?.length ?? 0) + (prebuilt.score?.database?.length ?? 0) });
  }
  const re2Detector = Detector.fromRuleSet(ruleSet, { prefer: 're2' });
  const naive = naiveRegExps(ruleSet.rules);
  const som = hs ? somConfirm(ruleSet) : undefined;

  const source = sourceCorpus();
  const prose = proseCorpus(ruleSet);
  for (const [name, text, extra] of [
    ['source_1mb', source.text, { languages: source.languages }],
    ['prose_1mb', prose.text, { planted: prose.planted }],
  ] as const) {
    const bytes = Buffer.byteLength(text);
    const mbps = (s: number) => round(bytes / MB / s);
    const row: Record<string, unknown> = { case: name, bytes, ...extra };
    const naiveS = timeIt(() => naiveScan(naive.res, text));
    const re2S = timeIt(() => re2Detector.scan(text));
    row.naive_mb_s = mbps(naiveS);
    row.naive_rules = naive.res.length;
    row.re2_mb_s = mbps(re2S);
    row.findings = re2Detector.scan(text).length;
    if (hsDetector && som) {
      const hsS = timeIt(() => hsDetector.scan(text));
      const somS = timeIt(() => som(text));
      row.hyperscan_mb_s = mbps(hsS);
      row.hyperscan_som_design_mb_s = mbps(somS);
      row.ratio_hyperscan_naive = round(naiveS / hsS);
      row.ratio_hyperscan_re2 = round(re2S / hsS);
      row.ratio_ends_design_som_design = round(somS / hsS);
      row.engines_agree = JSON.stringify(hsDetector.scan(text)) === JSON.stringify(re2Detector.scan(text));
    }
    emit(row);
  }

  // 1 KB prompts: inline on this thread, and through the worker pool (the hop included).
  const prompts: string[] = [];
  for (let i = 0; i + 1024 <= prose.text.length && prompts.length < 512; i += 2048) prompts.push(prose.text.slice(i, i + 1024));
  const det = hsDetector ?? re2Detector;
  const inlineS = timeIt(() => {
    for (const p of prompts) det.scan(p);
  });
  const threads = availableParallelism();
  const inspector = await Inspector.start({ threads, inlineMaxChars: 0, timeoutMs: 10_000 });
  try {
    for (let i = 0; i < 200; i++) await inspector.inspect([prompts[i % prompts.length]!]);
    const lat: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const s = performance.now();
      await inspector.inspect([prompts[i % prompts.length]!]);
      lat.push((performance.now() - s) * 1000);
    }
    // Throughput with many calls in flight, as a busy proxy would issue them.
    const total = 20_000;
    let next = 0;
    const s = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < total) await inspector.inspect([prompts[next++ % prompts.length]!]);
      }),
    );
    const secs = (performance.now() - s) / 1000;
    emit({
      case: 'prompt_1kb',
      engine: det.engineName,
      inline_us: round((inlineS / prompts.length) * 1e6),
      pool_threads: threads,
      pool_median_us: round(median(lat)),
      pool_p99_us: round([...lat].sort((a, b) => a - b)[Math.floor(lat.length * 0.99)]!),
      pool_prompts_per_s: Math.round(total / secs),
      pool_mb_s: round((total * 1024) / MB / secs),
    });
    // Where the hop stops costing more than it saves: inline vs pooled median by input size.
    const sizes = [1024, 4096, 16384, 65536];
    const cross: Record<string, unknown> = { case: 'inline_vs_pool' };
    for (const size of sizes) {
      const text = prose.text.slice(0, size);
      const inl = timeIt(() => det.scan(text)) * 1e6;
      const pl: number[] = [];
      for (let i = 0; i < 300; i++) {
        const st = performance.now();
        await inspector.inspect([text]);
        pl.push((performance.now() - st) * 1000);
      }
      cross[`inline_us_${size}`] = round(inl);
      cross[`pool_us_${size}`] = round(median(pl));
    }
    emit(cross);
  } finally {
    await inspector.close();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/scan failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
