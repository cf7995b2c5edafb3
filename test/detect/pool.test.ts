// Inspector: the same findings as a Detector whether a call is scanned inline or on a worker; timeouts and worker
// crashes are typed, counted, per-call errors the pool recovers from; reloads are atomic and a bad pack leaves the
// running rules in force; a closed inspector refuses work.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { SluiceError } from '../../src/errors';
import { chooseEngine, type EngineName } from '../../src/detect/engine';
import { hyperscanAvailable } from '../../src/detect/hyperscan';
import { INLINE_MAX_CHARS, Inspector, type InspectorOptions, type SegmentFinding } from '../../src/detect/pool';
import { BUILTIN_RULES_DIR } from '../../src/detect/rules';
import { Detector } from '../../src/detect/scan';
import { packDir, pack } from '../fixtures/packs';

const inspectors: Inspector[] = [];
after(async () => {
  await Promise.all(inspectors.map((i) => i.close()));
});



/** Starts an inspector that after() will close whatever happens in the test. */
async function start(options: InspectorOptions): Promise<Inspector> {
  const insp = await Inspector.start(options);
  inspectors.push(insp);
  return insp;
}

const ENGINES = (['re2', 'hyperscan'] as const).filter((e) => e === 're2' || hyperscanAvailable());
const DEFAULT_ENGINE = chooseEngine().name;
const KEY = Buffer.from('sluice-pool-test-digest-key-0001');
/**
 * timeoutMs for tests that are not about timeouts: a call's time includes waiting for a worker that is still
 * starting (see the start-up test below), which on a loaded 2-core machine can approach the 1000 ms default.
 */
const SLOW_OK = 60_000;

/** A small pack exercising every rule field: validators, capture group + allowlist, keywords, min_count, context. */
const SINK_RULES = [
  { id: 'ssn', category: 'pii', severity: 'high', pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b', validator: 'us-ssn' },
  { id: 'email', category: 'pii', pattern: '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\\b', validator: 'email' },
  { id: 'api-token', category: 'credential', severity: 'critical', pattern: 'api_token=([A-Za-z0-9]{8,})', allowlist: ['PLACEHOLDER1'] },
  { id: 'order-id', pattern: '\\bORD-\\d{6}\\b', keywords: ['invoice'] },
  { id: 'py-def', category: 'source_code', severity: 'low', pattern: '(?m)^def [a-z_]+\\(', min_count: 2, confidence: 0.6 },
  { id: 'ticket', pattern: '\\bTKT-\\d{5}\\b', confidence: 0.5, context: { boost: ['ticket'], damp: ['example'] } },
];
const sinkDir = packDir({ 'sink.yaml': pack('sink', SINK_RULES) });

/** The dense input the slow-scan tests use: every 12 characters a valid SSN the validator has to check. */
function denseSsns(chars: number): string {
  return '536-22-1987 '.repeat(Math.ceil(chars / 12)).slice(0, chars);
}

const CORPUS = [
  'SSN 536-22-1987, mail jane.doe@acme-corp.com',
  '',
  'nothing to see here',
  'invoice ORD-123456 api_token=Zq8vR2mK9wL4 api_token=PLACEHOLDER1',
  'ORD-654321 without the keyword',
  'def a(x):\n  pass\ndef b(y):\n  pass\n',
  '😀 ticket TKT-12345 日本語 536-22-1987 for example TKT-54321',
  '\uD800 536-22-1987 \uDFFF lone surrogates',
  'x'.repeat(INLINE_MAX_CHARS + 100) + ' 536-22-1987 jane.doe@acme-corp.com',
];

/** What the inspector should answer: the detector's findings per segment, tagged with the segment index. */
function expected(det: Detector, segments: readonly string[], values: boolean): SegmentFinding[] {
  return segments.flatMap((s, segment) => det.scan(s, { values }).map((f) => ({ ...f, segment })));
}

/** Retries `fn` while it fails with one of `codes` (a replacement worker still starting), up to `attempts` times. */
async function eventually<T>(t: TestContext, codes: string[], attempts: number, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 1; i <= attempts; i++) {
    try {
      const r = await fn();
      if (i > 1) t.diagnostic(`succeeded on attempt ${i}`);
      return r;
    } catch (err) {
      if (!codes.includes((err as SluiceError).code)) throw err;
      last = err;
      await sleep(100);
    }
  }
  throw last;
}

for (const engine of ENGINES) {
  test(`inline and pooled calls return the Detector's findings with segment indices (${engine})`, async () => {
    const det = await Detector.create([sinkDir], { prefer: engine, digestKey: KEY });
    const want = expected(det, CORPUS, false);
    // The corpus must exercise the rules, or equality proves little.
    assert.deepEqual([...new Set(want.map((f) => f.rule))].sort(), ['api-token', 'email', 'order-id', 'py-def', 'ssn', 'ticket']);
    assert.deepEqual([...new Set(want.map((f) => f.segment))], [0, 3, 5, 6, 7, 8]);

    const pooled = await start({ rulesDirs: [sinkDir], threads: 1, inlineMaxChars: 0, engine, digestKey: KEY, timeoutMs: SLOW_OK });
    const inline = await start({ rulesDirs: [sinkDir], threads: 1, inlineMaxChars: Number.MAX_SAFE_INTEGER, engine, digestKey: KEY, timeoutMs: SLOW_OK });
    for (const insp of [pooled, inline]) {
      assert.equal(insp.engine, engine);
      assert.deepEqual(await insp.inspect(CORPUS), want);
      assert.deepEqual(await insp.inspect(CORPUS, { values: true }), expected(det, CORPUS, true));
      for (const [i, s] of CORPUS.entries()) {
        assert.deepEqual(await insp.inspect([s]), expected(det, [s], false), `segment ${i} alone`);
      }
      assert.deepEqual(await insp.inspect([]), []);
    }
    // Per inspector: the corpus twice, each segment alone, and []; only calls with no characters at all stay inline.
    const calls = [CORPUS, CORPUS, ...CORPUS.map((s) => [s]), []].map((segs) => segs.join('').length);
    const empty = calls.filter((n) => n === 0).length;
    assert.equal(empty, 2);
    assert.deepEqual([pooled.stats().pooled, pooled.stats().inline], [calls.length - empty, empty], 'inlineMaxChars: 0 sends every non-empty call to a worker');
    assert.deepEqual([inline.stats().pooled, inline.stats().inline], [0, calls.length]);
    // Values stay out of findings unless asked for, on the worker path too.
    for (const f of await pooled.inspect(CORPUS)) assert.ok(!('value' in f));
  });
}

test('built-in packs: the default inline threshold splits calls, both paths match the Detector (re2)', async () => {
  const insp = await start({ threads: 1, engine: 're2', digestKey: KEY, timeoutMs: SLOW_OK });
  // The same rule set the inspector loaded (the built-in packs may be edited while the suite runs).
  const det = Detector.fromRuleSet(insp.ruleSet, { prefer: 're2', digestKey: KEY });
  assert.ok(insp.ruleSet.rules.some((r) => r.file.startsWith(BUILTIN_RULES_DIR)), 'default rulesDirs are the built-in packs');
  const small = ['SSN 536-22-1987', 'card 4539 1488 0343 6467 exp 04/29', 'AKIA2E0A8F3B244C9986 and jane.doe@acme-corp.com'];
  const large = [...small, 'lorem ipsum '.repeat(INLINE_MAX_CHARS / 12) + 'routing 021000021 and NPI 1234567893'];
  const wantSmall = expected(det, small, true);
  const wantLarge = expected(det, large, true);
  assert.ok(wantSmall.length >= 3 && wantLarge.length > wantSmall.length, 'the corpus finds something');
  assert.deepEqual(await insp.inspect(small, { values: true }), wantSmall);
  assert.deepEqual(insp.stats().inline, 1, `${small.join('').length} characters are scanned inline`);
  assert.deepEqual(await insp.inspect(large, { values: true }), wantLarge);
  assert.deepEqual(insp.stats().pooled, 1, 'more than INLINE_MAX_CHARS goes to a worker');
});

test(
  'the first pooled call after start() does not pay for worker start-up',
  async () => {
    const insp = await start({ threads: 1, engine: 're2', timeoutMs: 150, inlineMaxChars: 0 });
    const found = await insp.inspect(['SSN 536-22-1987']);
    assert.deepEqual(found.map((f) => [f.rule, f.segment]), [['us-ssn', 0]]);
    assert.equal(insp.stats().errors.timeout, 0);
  },
);

test('threads: 0 scans everything inline, however large', async () => {
  const det = await Detector.create([sinkDir], { digestKey: KEY });
  const insp = await start({ rulesDirs: [sinkDir], threads: 0, digestKey: KEY });
  const big = ['lorem ipsum '.repeat(20_000) + ' 536-22-1987 ', ...CORPUS];
  assert.deepEqual(await insp.inspect(big), expected(det, big, false));
  const s = insp.stats();
  assert.deepEqual({ threads: s.threads, inline: s.inline, pooled: s.pooled }, { threads: 0, inline: 1, pooled: 0 });
  assert.deepEqual(insp.workers, []);
});

// The timeout and crash tests run in this process on RE2: with the Hyperscan addon a worker stopped mid-call can
// abort the whole process (see the child-process test below), which would take every other test down with it.
test('a scan over timeoutMs rejects with SLUICE_INSPECT_TIMEOUT, is counted, and the pool recovers', async (t) => {
  const insp = await start({ rulesDirs: [sinkDir], threads: 1, timeoutMs: 300, inlineMaxChars: 0, engine: 're2' });
  const before = [...insp.workers];
  assert.equal(before.length, 1);
  const exited = once(before[0]!, 'exit');
  const big = denseSsns(30_000_000);
  await assert.rejects(insp.inspect([big]), (err: unknown) => {
    assert.ok(err instanceof SluiceError, String(err));
    assert.equal(err.code, 'SLUICE_INSPECT_TIMEOUT');
    assert.match(err.message, /300 ms/);
    return true;
  });
  assert.equal(insp.stats().errors.timeout, 1);
  // The runaway worker is stopped, not left scanning.
  await Promise.race([exited, sleep(15_000).then(() => assert.fail('the timed-out worker did not exit'))]);

  const first = await eventually(t, ['SLUICE_INSPECT_TIMEOUT'], 100, () => insp.inspect(['SSN 536-22-1987']));
  assert.deepEqual(first.map((f) => [f.rule, f.start, f.end, f.segment]), [['ssn', 4, 15, 0]]);
  for (let i = 0; i < 3; i++) assert.equal((await insp.inspect(['SSN 536-22-1987'])).length, 1);
  assert.equal(insp.workers.length, 1, 'replaced');
  assert.ok(!insp.workers.includes(before[0]!), 'by a new worker');
  const s = insp.stats();
  assert.equal(s.errors.timeout, 1 + (s.pooled - 5), 'only the slow call and any retries while the replacement started timed out');
  assert.deepEqual([s.errors.crashed, s.errors.engine, s.errors.overloaded], [0, 0, 0]);
});

test('a worker dying mid-scan rejects with SLUICE_INSPECT_CRASHED, is counted, and later calls succeed', async () => {
  const insp = await start({ rulesDirs: [sinkDir], threads: 2, timeoutMs: 120_000, inlineMaxChars: 0, engine: 're2' });
  const big = denseSsns(30_000_000);
  const outcome = insp.inspect([big]).then(
    () => 'resolved',
    (err: unknown) => err,
  );
  await sleep(300); // let the scan start
  const killed: Worker[] = [...insp.workers];
  assert.equal(killed.length, 2);
  await Promise.all(killed.map((w) => w.terminate()));
  const err = await outcome;
  assert.ok(err instanceof SluiceError, String(err));
  assert.equal(err.code, 'SLUICE_INSPECT_CRASHED');
  assert.equal(insp.stats().errors.crashed, 1);
  assert.equal(insp.stats().errors.timeout, 0);

  const results = await Promise.all([1, 2, 3, 4].map((n) => insp.inspect([`SSN 536-22-1987 #${n}`, 'invoice ORD-123456'])));
  for (const r of results) assert.deepEqual(r.map((f) => [f.rule, f.segment]), [['ssn', 0], ['order-id', 1]]);
  assert.equal(insp.workers.length, 2, 'both workers replaced');
  assert.ok(insp.workers.every((w) => !killed.includes(w)));
  assert.equal(insp.stats().threads, 2);
  assert.equal(insp.stats().errors.crashed, 1, 'the later calls were not errors');
});

/**
 * Runs in a child process: workers stopped by a timeout, then killed, while the Hyperscan addon is scanning. The
 * rules (bounded-distance proximity patterns) make Hyperscan itself slow on 60 MB of prose, so nearly all of each
 * scan is spent inside the native call and every stop lands there. Prints "survived".
 */
const FAULT_SCRIPT = `
const { Inspector } = require(process.argv[1]);
const rulesDirs = [process.argv[2]];
const big = 'lorem ipsum password dolor secret sit token amet apikey, consectetur adipiscing elit. '.repeat(700000);
const small = ['password 123456'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function recover(insp) {
  for (let i = 0; ; i++) {
    try { return await insp.inspect(small); } catch (e) { if (i > 200) throw e; await sleep(50); }
  }
}
(async () => {
  for (const timeoutMs of [400, 800]) {
    const insp = await Inspector.start({ rulesDirs, threads: 1, timeoutMs, inlineMaxChars: 0, engine: 'hyperscan' });
    await recover(insp);
    const err = await insp.inspect([big]).then(() => undefined, (e) => e);
    if (!err || err.code !== 'SLUICE_INSPECT_TIMEOUT') throw new Error('expected a timeout, got ' + err);
    await recover(insp);
    await insp.close();
  }
  const insp = await Inspector.start({ rulesDirs, threads: 1, timeoutMs: 120000, inlineMaxChars: 0, engine: 'hyperscan' });
  await insp.inspect(small);
  for (const delay of [400, 800]) {
    const outcome = insp.inspect([big]).then(() => undefined, (e) => e);
    await sleep(delay);
    await Promise.all(insp.workers.map((w) => w.terminate()));
    const err = await outcome;
    if (!err || err.code !== 'SLUICE_INSPECT_CRASHED') throw new Error('expected a crash, got ' + err);
    await insp.inspect(small);
  }
  await insp.close();
  console.log('survived');
})().catch((e) => { console.error(e); process.exit(1); });
`;

test(
  'Hyperscan engine: a worker stopped mid-scan (timeout or crash) is a per-call error, never a process abort',
  {
    skip: !hyperscanAvailable() && 'Hyperscan not available',
  },
  async () => {
    const slow = packDir({
      'slow.yaml': pack('slow', [
        { id: 'near-password', category: 'credential', pattern: 'password.{0,200}[0-9]{6}' },
        { id: 'near-secret', category: 'credential', pattern: 'secret.{0,200}[A-Z]{8}' },
        { id: 'near-token', category: 'credential', pattern: 'token.{0,200}[0-9]{6}' },
        { id: 'near-key', category: 'credential', pattern: 'apikey.{0,200}[0-9]{6}' },
      ]),
    });
    const child = spawn(process.execPath, ['-e', FAULT_SCRIPT, join(__dirname, '..', '..', 'src', 'detect', 'pool.js'), slow], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out);
    assert.match(out, /survived/);
  },
);

test('reload swaps rules atomically: new rules after it resolves, never a mix, calls in flight unaffected', async () => {
  const dirA = packDir({ 'a.yaml': pack('a', [{ id: 'alpha', pattern: '\\bALPHA-\\d+\\b' }]) });
  const dirB = packDir({ 'b.yaml': pack('b', [{ id: 'beta', pattern: '\\bBETA-\\d+\\b' }, { id: 'gamma', pattern: '\\bGAMMA-\\d+\\b' }]) });
  const insp = await start({ rulesDirs: [dirA], threads: 1, inlineMaxChars: 64, timeoutMs: SLOW_OK });
  const short = 'ALPHA-1 BETA-2 GAMMA-3';
  const long = short + ' '.repeat(100);
  const rules = async (text: string) => (await insp.inspect([text])).map((f) => f.rule).join(',');
  assert.equal(await rules(short), 'alpha');
  assert.equal(await rules(long), 'alpha');
  assert.equal(insp.stats().generation, 1);
  const workersBefore = [...insp.workers];

  const inFlight = insp.inspect([long]);
  const reloading = insp.reload([dirB]);
  const issuedDuring = insp.inspect([long]);
  // Hammer the inspector while the reload runs: every answer comes from one generation or the other.
  const answers: string[] = [];
  let done = false;
  const hammer = (async () => {
    while (!done) answers.push(await rules(answers.length % 2 ? short : long));
  })();
  const set = await reloading;
  done = true;
  await hammer;
  assert.deepEqual(set.rules.map((r) => r.id), ['beta', 'gamma']);
  assert.equal((await inFlight).map((f) => f.rule).join(','), 'alpha', 'a call in flight finishes on its rules');
  assert.equal((await issuedDuring).map((f) => f.rule).join(','), 'alpha', 'the swap happens when reload resolves');
  for (const a of answers) assert.ok(a === 'alpha' || a === 'beta,gamma', `mixed generation answer: ${a}`);

  assert.equal(await rules(short), 'beta,gamma', 'inline path on the new rules');
  assert.equal(await rules(long), 'beta,gamma', 'pooled path on the new rules');
  const s = insp.stats();
  assert.deepEqual({ generation: s.generation, reloads: s.reloads, rules: s.rules, threads: s.threads }, { generation: 2, reloads: { ok: 1, failed: 0 }, rules: 2, threads: 1 });
  assert.deepEqual(insp.ruleSet.rules.map((r) => r.id), ['beta', 'gamma']);
  assert.ok(insp.workers.every((w) => !workersBefore.includes(w)), 'the new rules run on new workers');

  // reload() without dirs re-reads the current ones.
  writeFileSync(join(dirB, 'b.yaml'), pack('b', [{ id: 'delta', pattern: '\\bALPHA-\\d+\\b' }]));
  await insp.reload();
  assert.equal(await rules(short), 'delta');
  assert.equal(await rules(long), 'delta');
  assert.equal(insp.stats().generation, 3);
});

test('a bad pack is refused with SLUICE_RULE_INVALID naming file and rule; the previous rules keep working', async () => {
  const good = packDir({ 'good.yaml': pack('good', [{ id: 'alpha', pattern: '\\bALPHA-\\d+\\b' }]) });
  const insp = await start({ rulesDirs: [good], threads: 1, inlineMaxChars: 64, timeoutMs: SLOW_OK });
  const short = 'ALPHA-1 here';
  const long = short + ' '.repeat(100);
  const cases: Array<{ name: string; files: Record<string, string>; mentions: (dir: string) => Array<string | RegExp> }> = [
    {
      name: 'invalid YAML',
      files: { 'broken.yaml': 'pack: broken\nrules:\n  - id: yaml-rule\n    category: other\n    pattern: [\n' },
      mentions: (d) => [`${join(d, 'broken.yaml')}:`, /\(yaml\)/],
    },
    {
      name: 'bad regex',
      files: { 'regex.yaml': pack('regex', [{ id: 'ok-rule', pattern: 'fine' }, { id: 'broken-regex', pattern: '(unclosed' }]) },
      mentions: (d) => [`${join(d, 'regex.yaml')}:4:`, 'broken-regex', /invalid RE2 pattern/],
    },
    {
      name: 'duplicate id',
      files: { 'dup.yaml': pack('dup', [{ id: 'twice', pattern: 'one' }, { id: 'twice', pattern: 'two' }]) },
      mentions: (d) => [`${join(d, 'dup.yaml')}:4:`, 'duplicate rule id "twice"'],
    },
    {
      name: 'unknown validator',
      files: { 'val.yaml': pack('val', [{ id: 'bad-check', pattern: '\\d+', validator: 'no-such-check' }]) },
      mentions: (d) => [`${join(d, 'val.yaml')}:3:`, 'bad-check', 'unknown validator "no-such-check"'],
    },
    {
      name: 'missing directory',
      files: {},
      mentions: (d) => [join(d, 'does-not-exist')],
    },
  ];
  let failed = 0;
  for (const c of cases) {
    const d = packDir(c.files);
    const target = c.name === 'missing directory' ? join(d, 'does-not-exist') : d;
    await assert.rejects(insp.reload([good, target]), (err: unknown) => {
      assert.ok(err instanceof SluiceError, `${c.name}: ${String(err)}`);
      assert.equal(err.code, 'SLUICE_RULE_INVALID', c.name);
      for (const m of c.mentions(d)) {
        if (typeof m === 'string') assert.ok(err.message.includes(m), `${c.name}: message should name ${m}:\n${err.message}`);
        else assert.match(err.message, m, c.name);
      }
      return true;
    });
    failed++;
    const s = insp.stats();
    assert.deepEqual({ generation: s.generation, reloads: s.reloads, rules: s.rules }, { generation: 1, reloads: { ok: 0, failed }, rules: 1 }, c.name);
    assert.deepEqual((await insp.inspect([short])).map((f) => f.rule), ['alpha'], `${c.name}: inline still on the old rules`);
    assert.deepEqual((await insp.inspect([long])).map((f) => f.rule), ['alpha'], `${c.name}: pooled still on the old rules`);
  }
  assert.equal(insp.stats().errors.engine, 0);
  // A good reload after the failures still goes through.
  const next = packDir({ 'n.yaml': pack('n', [{ id: 'omega', pattern: '\\bALPHA-\\d+\\b' }]) });
  await insp.reload([next]);
  assert.deepEqual((await insp.inspect([long])).map((f) => f.rule), ['omega']);
  assert.deepEqual(insp.stats().reloads, { ok: 1, failed });
});

test('Inspector.start refuses a bad pack with SLUICE_RULE_INVALID', async () => {
  const d = packDir({ 'bad.yaml': pack('bad', [{ id: 'broken-regex', pattern: '(unclosed' }]) });
  await assert.rejects(Inspector.start({ rulesDirs: [d], threads: 1 }), (err: unknown) => {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_RULE_INVALID', String(err));
    assert.ok(err.message.includes(join(d, 'bad.yaml')) && err.message.includes('broken-regex'), err.message);
    return true;
  });
});

test('close() lets a call in flight finish; afterwards inspect and reload reject with SLUICE_SHUTTING_DOWN', async () => {
  const insp = await start({ rulesDirs: [sinkDir], threads: 1, inlineMaxChars: 64, timeoutMs: SLOW_OK });
  const text = denseSsns(60_000);
  const inFlight = insp.inspect([text]);
  await sleep(20);
  await insp.close();
  assert.equal((await inFlight).length, 5_000, 'the call in flight completed');
  for (const segments of [['SSN 536-22-1987'], ['SSN 536-22-1987' + ' '.repeat(100)], []]) {
    await assert.rejects(insp.inspect(segments), (err: unknown) => {
      assert.ok(err instanceof SluiceError, String(err));
      assert.equal(err.code, 'SLUICE_SHUTTING_DOWN');
      return true;
    });
  }
  await assert.rejects(insp.reload(), { code: 'SLUICE_SHUTTING_DOWN' });
  await insp.close(); // idempotent
  assert.equal(insp.stats().errors.engine, 0, 'refusals after close are not engine errors');
});

test('stats() reports engine, rules and threads', async () => {
  const engine: EngineName = DEFAULT_ENGINE;
  const insp = await start({ rulesDirs: [sinkDir], threads: 2, engine });
  const s = insp.stats();
  assert.deepEqual(
    { engine: s.engine, rules: s.rules, threads: s.threads, generation: s.generation, queued: s.queued },
    { engine, rules: SINK_RULES.length, threads: 2, generation: 1, queued: 0 },
  );
  assert.deepEqual(s.errors, { timeout: 0, crashed: 0, overloaded: 0, engine: 0 });
  assert.deepEqual(s.reloads, { ok: 0, failed: 0 });
  // A snapshot: mutating it does not touch the inspector.
  s.errors.timeout = 99;
  assert.equal(insp.stats().errors.timeout, 0);
});

test('a compiled-rules cache serves the next start; a damaged entry is ignored, recompiled and replaced', { skip: !hyperscanAvailable() && 'Hyperscan not available' }, async () => {
  const cacheDir = packDir({});
  const rulesDirs = [packDir({ 'x.yaml': pack('x', [{ id: 'codename', pattern: 'PROJECT-[A-Z]{4}' }, { id: 'ticket', pattern: 'TCK-[0-9]{5}' }]) })];
  const text = 'see PROJECT-ORCA and TCK-12345';
  const run = async () => {
    const insp = await start({ threads: 1, engine: 'hyperscan', rulesDirs, cacheDir, inlineMaxChars: 0 });
    const found = (await insp.inspect([text])).map((f) => f.rule);
    const compiled = insp.stats().compiled;
    await insp.close();
    return { compiled, found };
  };
  assert.deepEqual(await run(), { compiled: 'compile', found: ['codename', 'ticket'] });
  const entries = readdirSync(cacheDir);
  assert.equal(entries.length, 1);
  assert.deepEqual(await run(), { compiled: 'cache', found: ['codename', 'ticket'] });
  // Damaged in either layer: the v8 envelope, or the Hyperscan bytes inside a valid envelope.
  writeFileSync(join(cacheDir, entries[0]!), 'not a database');
  assert.deepEqual(await run(), { compiled: 'compile', found: ['codename', 'ticket'] });
  const good = readFileSync(join(cacheDir, entries[0]!));
  const envelope = deserialize(good) as { main: { database: Uint8Array } };
  envelope.main.database = envelope.main.database.subarray(0, 64);
  writeFileSync(join(cacheDir, entries[0]!), serialize(envelope));
  assert.deepEqual(await run(), { compiled: 'compile', found: ['codename', 'ticket'] });
  assert.deepEqual(await run(), { compiled: 'cache', found: ['codename', 'ticket'] });
  // Different rules, different entry: a cached database never answers for another rule set.
  const other = [packDir({ 'y.yaml': pack('y', [{ id: 'codename', pattern: 'PROJECT-[A-Z]{3}' }]) })];
  const insp = await start({ threads: 0, engine: 'hyperscan', rulesDirs: other, cacheDir });
  assert.equal(insp.stats().compiled, 'compile');
  assert.equal(readdirSync(cacheDir).length, 2);
});
