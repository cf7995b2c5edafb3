// Detector behaviour for the rule fields (keywords, allowlist, context, min_count, confidence), what findings carry
// (masked, digest, value), hostile input (random bytes, lone surrogates) on both engines, and a 100 MB scan.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestValue, maskValue } from '../../src/detect/findings';
import { hyperscanAvailable } from '../../src/detect/hyperscan';
import { chooseEngine } from '../../src/detect/engine';
import { BUILTIN_RULES_DIR, DEFAULT_CONFIDENCE, loadRulePacks } from '../../src/detect/rules';
import { Detector, type Finding } from '../../src/detect/scan';
import { VALIDATORS } from '../../src/detect/validators/index.js';
import { packDir, pack } from '../fixtures/packs';



const ENGINES = (['re2', 'hyperscan'] as const).filter((e) => e === 're2' || hyperscanAvailable());

/** One detector per engine over the built-in packs, shared by the tests below (compiling them is not free). */
const builtins = new Map<'re2' | 'hyperscan', Promise<Detector>>();
function builtinDetector(engine: 're2' | 'hyperscan'): Promise<Detector> {
  let d = builtins.get(engine);
  if (!d) builtins.set(engine, (d = loadRulePacks([BUILTIN_RULES_DIR]).then((set) => Detector.fromRuleSet(set, { prefer: engine }))));
  return d;
}

async function detector(rules: Array<Record<string, unknown>>, engine: 're2' | 'hyperscan', digestKey?: Buffer): Promise<Detector> {
  const det = await Detector.create([packDir({ 'p.yaml': pack('p', rules) })], { prefer: engine, ...(digestKey ? { digestKey } : {}) });
  assert.equal(det.engineName, engine);
  return det;
}

/** [rule, matched text] per finding, in order. */
function hits(text: string, findings: Finding[]): Array<[string, string]> {
  return findings.map((f) => [f.rule, text.slice(f.start, f.end)]);
}

for (const engine of ENGINES) {
  test(`keywords gate a rule on a keyword anywhere in the text, in any case (${engine})`, async () => {
    const det = await detector(
      [
        { id: 'order-id', pattern: '\\bORD-\\d{6}\\b', keywords: ['Invoice', 'purchase order'] },
        { id: 'ref-id', pattern: '\\bREF-\\d{4}\\b' },
      ],
      engine,
    );
    const scan = (text: string) => hits(text, det.scan(text));
    assert.deepEqual(scan('ORD-123456 and REF-1234'), [['ref-id', 'REF-1234']], 'no keyword: only the ungated rule');
    assert.deepEqual(scan('invoice ORD-123456'), [['order-id', 'ORD-123456']]);
    assert.deepEqual(scan('ORD-123456 is on the INVOICE'), [['order-id', 'ORD-123456']], 'keyword after the match');
    assert.deepEqual(scan('Purchase Order: ORD-123456'), [['order-id', 'ORD-123456']], 'multi-word keyword');
    const far = 'InVoIcE' + ' and then a lot of unrelated prose'.repeat(3000) + ' ORD-123456';
    assert.deepEqual(scan(far), [['order-id', 'ORD-123456']], 'keyword far outside the context window');
    assert.deepEqual(scan('invoice ORD-111111, ORD-222222 REF-9999'), [['order-id', 'ORD-111111'], ['order-id', 'ORD-222222'], ['ref-id', 'REF-9999']]);
    // The keyword verdict belongs to one scan: a keyword seen in an earlier call does not open the gate.
    assert.deepEqual(scan('invoice'), []);
    assert.deepEqual(scan('ORD-123456'), []);
  });

  test(`allowlist drops exact and /regex/ entries, the regex matching the whole value (${engine})`, async () => {
    const det = await detector([{ id: 'employee-id', pattern: '\\bEMP-\\d{4}\\b', allowlist: ['EMP-0000', '/EMP-9\\d{3}/', '/EMP-12/'] }], engine);
    const text = 'EMP-0000 EMP-9123 EMP-1234 EMP-0001 EMP-9';
    assert.deepEqual(hits(text, det.scan(text)), [['employee-id', 'EMP-1234'], ['employee-id', 'EMP-0001']]);
  });

  test(`allowlist entries are checked against capture group 1 when the pattern has one group (${engine})`, async () => {
    const det = await detector(
      [{ id: 'api-token', pattern: 'api_token=([A-Za-z0-9]{8,})', allowlist: ['PLACEHOLDER1', '/x{8,}/', 'api_token=Zq8vR2mK9w'] }],
      engine,
    );
    const text = 'api_token=PLACEHOLDER1 api_token=xxxxxxxxxx api_token=Zq8vR2mK9w api_token=xxxxxxxxxy';
    const found = det.scan(text, { values: true });
    // The entry spelling the whole match does not suppress: only the captured value is judged.
    assert.deepEqual(found.map((f) => f.value), ['Zq8vR2mK9w', 'xxxxxxxxxy']);
    for (const f of found) {
      assert.ok(text.slice(f.start, f.end).includes(f.value!), 'the span covers the value');
      assert.equal(f.masked, maskValue(f.value!), 'masked describes the captured value');
    }
  });

  test(`context boost raises and damp lowers confidence, within the rule's window (${engine})`, async () => {
    const det = await detector(
      [
        { id: 'ticket', pattern: '\\bTKT-\\d{5}\\b', confidence: 0.5, context: { boost: ['ticket'], damp: ['example'] } },
        { id: 'ticket-near', pattern: '\\bTKN-\\d{5}\\b', confidence: 0.5, context: { boost: ['ticket'], damp: ['example'], window: 10 } },
      ],
      engine,
    );
    const conf = (text: string): number => {
      const f = det.scan(text);
      assert.equal(f.length, 1, `one finding in ${JSON.stringify(text)}`);
      return f[0]!.confidence;
    };
    assert.equal(conf('see TKT-12345 now'), 0.5, 'no context words: the rule confidence');
    assert.ok(conf('ticket TKT-12345') > 0.5, 'boost before');
    assert.ok(conf('TKT-12345 is the ticket') > 0.5, 'boost after');
    assert.ok(conf('example TKT-12345') < 0.5, 'damp before');
    assert.ok(conf('TKT-12345 for example') < 0.5, 'damp after');
    assert.equal(conf('a ticket far, far away from the value here: TKN-12345'), 0.5, 'boost word outside window: 10');
    assert.ok(conf('ticket: TKN-12345') > 0.5, 'boost word inside window: 10');
    for (const text of ['ticket TKT-12345', 'example TKT-12345']) {
      const c = conf(text);
      assert.ok(c >= 0 && c <= 1, `${text}: ${c} within 0..1`);
    }
  });

  test(`the validator's confidence replaces the rule's, and the rule's context still moves it (${engine})`, async () => {
    const det = await detector(
      [{ id: 'ssn-zoo', category: 'pii', pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b', validator: 'us-ssn', confidence: 0.1, context: { boost: ['zebra'], damp: ['giraffe'] } }],
      engine,
    );
    const plain = det.scan('plain 536-22-1987');
    assert.equal(plain.length, 1);
    const own = VALIDATORS['us-ssn']!('536-22-1987', { before: 'plain ', after: '' });
    assert.equal(own.valid, true);
    assert.equal(plain[0]!.confidence, own.confidence, 'the validator gave a confidence, so it is used');
    assert.notEqual(plain[0]!.confidence, 0.1);
    assert.ok(own.confidence! < 1 && own.confidence! > 0, 'room to move both ways');
    assert.ok(det.scan('zebra 536-22-1987')[0]!.confidence > plain[0]!.confidence, 'boost');
    assert.ok(det.scan('giraffe 536-22-1987')[0]!.confidence < plain[0]!.confidence, 'damp');
    // A candidate the validator rejects is not reported, whatever the context says.
    assert.deepEqual(det.scan('zebra 000-12-3456'), []);
  });

  test(`the rule's confidence is used when there is no validator; the default when it has none (${engine})`, async () => {
    const det = await detector(
      [
        { id: 'conf-set', pattern: '\\bCNF-\\d{3}\\b', confidence: 0.35 },
        { id: 'conf-default', pattern: '\\bCND-\\d{3}\\b' },
        { id: 'conf-zero', pattern: '\\bCNZ-\\d{3}\\b', confidence: 0 },
      ],
      engine,
    );
    // Without `context:` the rule's confidence is not adjusted by any words, built-in boost/damp lists included.
    const text = 'example password secret test CNF-123 CND-456 CNZ-789 token sample';
    assert.deepEqual(det.scan(text).map((f) => [f.rule, f.confidence]), [['conf-set', 0.35], ['conf-default', DEFAULT_CONFIDENCE], ['conf-zero', 0]]);
  });

  test(`min_count reports one finding with count, spanning first..last match, and nothing below it (${engine})`, async () => {
    const key = Buffer.alloc(32, 7);
    const det = await detector(
      [
        { id: 'py-def', category: 'source_code', severity: 'low', pattern: '(?m)^def [a-z_]+\\(', min_count: 3, confidence: 0.6 },
        { id: 'ref-id', pattern: '\\bREF-\\d{4}\\b' },
      ],
      engine,
      key,
    );
    const two = 'def a(x):\n  pass\ndef b(y):\n  pass\n';
    assert.deepEqual(det.scan(two), [], 'below min_count');
    assert.deepEqual(det.scan(two), [], 'counts do not carry over between scans');
    assert.deepEqual(det.scan('REF-1234 ' + two).map((f) => f.rule), ['ref-id'], 'other rules unaffected');

    const three = 'intro REF-0001\ndef a(x):\n  return 1\ndef b(y):\n  REF-0002\ndef c(z):\n  pass\nouttro';
    const found = det.scan(three, { values: true });
    assert.deepEqual(found.map((f) => f.rule), ['ref-id', 'py-def', 'ref-id'], 'sorted by start');
    const f = found.find((x) => x.rule === 'py-def')!;
    const start = three.indexOf('def a(');
    const end = three.indexOf('def c(') + 'def c('.length;
    assert.deepEqual(
      { start: f.start, end: f.end, count: f.count, confidence: f.confidence, category: f.category, severity: f.severity },
      { start, end, count: 3, confidence: 0.6, category: 'source_code', severity: 'low' },
    );
    assert.equal(f.value, three.slice(start, end));
    assert.equal(f.masked, maskValue(three.slice(start, end)));
    // A score finding stands for a region of code, not an identifier: no digest to correlate (Finding.digest).
    assert.ok(!('digest' in f), 'no digest on a min_count finding');

    const five = Array.from({ length: 5 }, (_, i) => `def f${'abcde'[i]}():\n  pass\n`).join('');
    const many = det.scan(five);
    assert.equal(many.length, 1);
    assert.equal(many[0]!.count, 5);
    assert.equal(many[0]!.start, 0);
    assert.equal(many[0]!.end, five.lastIndexOf('def fe(') + 'def fe('.length);
    assert.ok(many[0]!.confidence >= 0.6 && many[0]!.confidence <= 1, String(many[0]!.confidence));
  });

  test(`findings carry masked and, with a digest key, digest = digestValue(key, value); value only on request (${engine})`, async () => {
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const rules = [
      { id: 'employee-id', category: 'pii', severity: 'high', pattern: '\\bEMP-\\d{4}\\b' },
      { id: 'api-token', category: 'credential', severity: 'critical', pattern: 'api_token=([A-Za-z0-9]{8,})' },
    ];
    const det = await detector(rules, engine, key);
    const text = 'EMP-1234 then api_token=Zq8vR2mK9wL4 and EMP-1234 again, EMP-5678';
    const plain = det.scan(text);
    const withValues = det.scan(text, { values: true });
    assert.equal(plain.length, 4);
    for (const f of plain) assert.ok(!('value' in f), `no value unless asked: ${JSON.stringify(f)}`);
    for (const f of plain) assert.ok(!JSON.stringify(f).includes('Zq8vR2mK9wL4') && !JSON.stringify(f).includes('EMP-5678'), 'the raw value never appears');
    const values = ['EMP-1234', 'Zq8vR2mK9wL4', 'EMP-1234', 'EMP-5678'];
    assert.deepEqual(withValues.map((f) => f.value), values);
    withValues.forEach((f, i) => {
      assert.equal(f.masked, maskValue(values[i]!));
      assert.equal(f.digest, digestValue(key, values[i]!));
      assert.deepEqual({ ...plain[i] }, (({ value: _v, ...rest }) => rest)(f), 'same finding with and without values');
    });
    assert.deepEqual(
      withValues.map((f) => [f.rule, f.category, f.severity]),
      [['employee-id', 'pii', 'high'], ['api-token', 'credential', 'critical'], ['employee-id', 'pii', 'high'], ['employee-id', 'pii', 'high']],
    );
    assert.equal(plain[0]!.digest, plain[2]!.digest, 'equal values, equal digests');
    assert.notEqual(plain[0]!.digest, plain[3]!.digest);
    // Another key, other digests; no key, no digest.
    const other = await detector(rules, engine, Buffer.alloc(32, 9));
    assert.notEqual(other.scan(text)[0]!.digest, plain[0]!.digest);
    const keyless = await detector(rules, engine);
    for (const f of keyless.scan(text, { values: true })) {
      assert.ok(!('digest' in f));
      assert.equal(f.masked, maskValue(f.value!));
    }
  });
}

/** Deterministic bytes (mulberry32) so a failing case can be replayed. */
function randomBuffer(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    out[i] = (x ^ (x >>> 14)) & 0xff;
  }
  return out;
}

test('binary and invalid UTF-8 input is scanned without throwing, with correct offsets, on both engines', async () => {
  const detectors = await Promise.all(ENGINES.map((e) => builtinDetector(e)));
  const plant = ' SSN 536-22-1987 ';
  const garbage: Array<[string, string]> = [];
  for (let seed = 1; seed <= 2; seed++) {
    const bytes = randomBuffer(seed, 12 * 1024);
    garbage.push([`utf8 ${seed}`, bytes.toString('utf8')], [`latin1 ${seed}`, bytes.toString('latin1')], [`utf16le ${seed}`, bytes.toString('utf16le')]);
  }
  garbage.push(
    ['lone high surrogates', '\uD800'.repeat(1000)],
    ['lone low surrogates', '\uDFFF'.repeat(1000)],
    ['reversed pairs', '\uDE00\uD83D'.repeat(500)],
    ['NULs', '\u0000'.repeat(1000)],
    ['BOM and non-characters', '\uFEFF\uFFFE\uFFFF'.repeat(300)],
  );
  for (const [label, g] of garbage) {
    const half = Math.floor(g.length / 2);
    for (const text of [g, g.slice(0, half) + plant + g.slice(half), '\uD800' + plant + '\uDC00' + g]) {
      const results = detectors.map((d) => d.scan(text, { values: true }));
      // Both engines agree, and a planted SSN is found exactly where it was put.
      for (let i = 1; i < results.length; i++) assert.deepEqual(results[i], results[0], `${label}: engines disagree`);
      for (const f of results[0]!) assert.equal(text.slice(f.start, f.end).includes(f.value!), true, `${label}: value inside its span`);
      const at = text.indexOf(plant);
      if (at >= 0) {
        const ssn = results[0]!.filter((f) => f.rule === 'us-ssn' && f.value === '536-22-1987');
        assert.deepEqual(ssn.map((f) => [f.start, f.end]), [[at + 5, at + 16]], `${label}: planted SSN at its UTF-16 offset`);
      }
    }
  }
  for (const d of detectors) {
    assert.deepEqual(d.scan(''), []);
    assert.deepEqual(hits('\uD800x jane.doe@acme-corp.com \uDFFF', d.scan('\uD800x jane.doe@acme-corp.com \uDFFF')), [['email', 'jane.doe@acme-corp.com']], d.engineName);
  }
});

test('a 100 MB input: exactly the planted values at their offsets, bounded memory', async (t) => {
  // The engine a deployment gets by default (Hyperscan when it loads; SLUICE_ENGINE=re2 in CI runs RE2).
  const det = await builtinDetector(chooseEngine().name);
  const SIZE = 100 * 1024 * 1024;
  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ';
  // Values and where they go: near the start, the middle and the end. The emoji makes the text two-byte, so
  // UTF-8 byte offsets and UTF-16 offsets differ from there on.
  const plants: Array<{ at: number; rule?: string; value: string }> = [
    { at: 100, value: ' Grüße 👋 日本語 ' },
    { at: 1_000, rule: 'email', value: 'jane.doe@acme-corp.com' },
    { at: 4_096, rule: 'us-ssn', value: '536-22-1987' },
    { at: SIZE / 2, rule: 'credit-card', value: '4539 1488 0343 6467' },
    { at: SIZE / 2 + 50_000, rule: 'us-ssn', value: '536-22-1987' },
    { at: SIZE - 5_000, rule: 'aws-access-key', value: 'AKIA2E0A8F3B244C9986' },
    { at: SIZE - 40, rule: 'email', value: 'ops.lead@acme-corp.com' },
  ];
  const parts: string[] = [];
  let pos = 0;
  const body = filler.repeat(Math.ceil(SIZE / filler.length));
  for (const p of plants) {
    // Pad with spaces so each value stands alone as a word.
    parts.push(body.slice(pos, p.at - 1), ' ', p.value, ' ');
    pos = p.at + p.value.length + 1;
  }
  parts.push(body.slice(pos, SIZE));
  let text: string | undefined = parts.join('');
  parts.length = 0;
  assert.equal(text.length, SIZE);
  for (const p of plants) assert.equal(text.slice(p.at, p.at + p.value.length), p.value);

  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const found = det.scan(text);
  const ms = performance.now() - started;
  const rssAfter = process.memoryUsage().rss;
  const peak = process.resourceUsage().maxRSS * 1024;
  const growth = rssAfter - rssBefore;
  const peakGrowth = Math.max(0, peak - rssBefore);
  t.diagnostic(`engine ${det.engineName}: ${found.length} findings in ${Math.round(ms)} ms; RSS ${mb(rssBefore)} → ${mb(rssAfter)} MB (growth ${mb(growth)} MB, peak ${mb(peak)} MB, peak growth ≤ ${mb(peakGrowth)} MB)`);

  assert.deepEqual(
    found.map((f) => ({ rule: f.rule, start: f.start, end: f.end })),
    plants.filter((p) => p.rule).map((p) => ({ rule: p.rule, start: p.at, end: p.at + p.value.length })),
  );
  for (const f of found) assert.equal(f.masked, maskValue(text.slice(f.start, f.end)));
  assert.ok(growth < 1.5 * 1024 ** 3, `RSS grew by ${mb(growth)} MB scanning 100 MB`);
  assert.ok(peakGrowth < 1.5 * 1024 ** 3, `RSS peaked ${mb(peakGrowth)} MB above the pre-scan level`);
  text = undefined;
});

function mb(n: number): number {
  return Math.round(n / 1024 / 1024);
}
