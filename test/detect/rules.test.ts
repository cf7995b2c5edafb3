// Rule packs: every built-in rule's examples hold on both engines, bad packs are rejected with file:line,
// and findings carry UTF-16 offsets in text with multi-byte characters.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SluiceError } from '../../src/errors';
import { hyperscanAvailable } from '../../src/detect/hyperscan';
import { BUILTIN_RULES_DIR, loadRulePacks } from '../../src/detect/rules';
import { Detector, runRuleExamples } from '../../src/detect/scan';
import { packDir } from '../fixtures/packs';


// Compiling every built-in pack takes seconds; each engine's detector is built once for this file.
const builtins = new Map<'re2' | 'hyperscan', Promise<Detector>>();
function builtin(engine: 're2' | 'hyperscan'): Promise<Detector> {
  let d = builtins.get(engine);
  if (!d) builtins.set(engine, (d = loadRulePacks([BUILTIN_RULES_DIR]).then((set) => Detector.fromRuleSet(set, { prefer: engine }))));
  return d;
}

test('built-in packs load and cover the expected rules, each with match and no_match examples', async () => {
  const set = await loadRulePacks([BUILTIN_RULES_DIR]);
  assert.deepEqual(set.packs.map((p) => p.name).sort(), ['code', 'financial', 'injection', 'phi', 'pii', 'secrets']);
  const ids = set.rules.map((r) => r.id);
  for (const id of ['email', 'us-ssn', 'uk-nino', 'ca-sin', 'phone-e164', 'phone-nanp', 'ipv4', 'credit-card', 'iban', 'aba-routing',
    'npi', 'dea-number', 'aws-access-key', 'github-token', 'openai-key', 'slack-token', 'jwt', 'pem-private-key', 'generic-secret']) {
    assert.ok(ids.includes(id), `missing rule ${id}`);
  }
  for (const r of set.rules) {
    assert.ok(r.examples.match.length > 0, `${r.id} has no match example`);
    assert.ok(r.examples.no_match.length > 0, `${r.id} has no no_match example`);
  }
});

for (const engine of ['re2', 'hyperscan'] as const) {
  test(`every built-in rule's examples hold (${engine})`, { skip: engine === 'hyperscan' && !hyperscanAvailable() }, async () => {
    const det = await builtin(engine);
    assert.deepEqual(runRuleExamples(det.ruleSet, det), []);
  });
}

test('runRuleExamples reports a rule whose examples are wrong', async () => {
  const d = packDir({
    'x.yaml': 'pack: x\nrules:\n  - id: digits\n    category: other\n    severity: low\n    pattern: \'\\d+\'\n    examples:\n      match: [abc]\n      no_match: [a1]\n',
  });
  const failures = runRuleExamples(await loadRulePacks([d]));
  assert.deepEqual(failures.map((f) => [f.rule, f.kind, f.example]), [['digits', 'match', 'abc'], ['digits', 'no_match', 'a1']]);
});

test('a bad pack is rejected with every problem as file:line: rules[i].field', async () => {
  const d = packDir({
    'a.yaml': [
      'pack: a', //                       1
      'rules:', //                        2
      '  - id: one', //                   3
      '    category: pii', //             4
      '    severity: extreme', //         5
      '    pattern: foo', //              6
      '    validator: no-such-check', //  7
      '  - id: two', //                   8
      '    category: other', //           9
      '    severity: low', //             10
      "    pattern: '(unclosed'", //      11
      '  - id: dup', //                   12
      '    category: other', //           13
      '    severity: low', //             14
      '    pattern: dup', //              15
      '',
    ].join('\n'),
    'b.yaml': 'pack: b\nrules:\n  - id: dup\n    category: other\n    severity: low\n    pattern: dup2\n',
  });
  await assert.rejects(loadRulePacks([d]), (err: unknown) => {
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, 'SLUICE_RULE_INVALID');
    const a = join(d, 'a.yaml');
    const b = join(d, 'b.yaml');
    assert.match(err.message, new RegExp(`${esc(a)}:5: rules\\[0\\]\\(one\\)\\.severity: "extreme" is not one of`));
    assert.match(err.message, new RegExp(`${esc(a)}:7: rules\\[0\\]\\(one\\)\\.validator: unknown validator "no-such-check"`));
    assert.match(err.message, new RegExp(`${esc(a)}:11: rules\\[1\\]\\(two\\)\\.pattern: invalid RE2 pattern`));
    assert.match(err.message, new RegExp(`${esc(b)}:3: rules\\[0\\]\\(dup\\)\\.id: duplicate rule id "dup" \\(first defined at ${esc(a)}:12\\)`));
    return true;
  });
});

test('YAML syntax errors and missing keys carry lines too', async () => {
  const d = packDir({ 'c.yml': 'pack: c\nrules:\n  - id: x\n    category: other\n    pattern: [\n' });
  await assert.rejects(loadRulePacks([d]), (err: unknown) => {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_RULE_INVALID');
    assert.match(err.message, /c\.yml:\d+: \(yaml\):/);
    return true;
  });
  const e = packDir({ 'e.yaml': 'pack: e\nrules:\n  - id: x\n    category: other\n    pattern: x\n    colour: red\n' });
  await assert.rejects(loadRulePacks([e]), /e\.yaml:3: rules\[0\]\(x\)\.severity: is required[\s\S]*e\.yaml:6: rules\[0\]\(x\)\.colour: unknown key/);
});

test('findings carry UTF-16 offsets in multi-byte text, on both engines', async () => {
  const text = 'Grüße 👋 — ñame jane.doe@acme-corp.com 日本語 SSN 536-22-1987 🚀 AKIA2E0A8F3B244C9986';
  const expected = [
    ['email', 'jane.doe@acme-corp.com'],
    ['us-ssn', '536-22-1987'],
    ['aws-access-key', 'AKIA2E0A8F3B244C9986'],
  ].map(([rule, s]) => ({ rule, start: text.indexOf(s!), end: text.indexOf(s!) + s!.length }));
  for (const engine of ['re2', 'hyperscan'] as const) {
    if (engine === 'hyperscan' && !hyperscanAvailable()) continue;
    const det = await builtin(engine);
    assert.equal(det.engineName, engine);
    const got = det.scan(text).map((f) => ({ rule: f.rule, start: f.start, end: f.end }));
    assert.deepEqual(got, expected, engine);
  }
});

test('validators judge capture group 1 and drop rejected candidates', async () => {
  const det = await builtin(hyperscanAvailable() ? 'hyperscan' : 're2');
  const hit = det.scan('config: password = "Zq8#vR2!mK9$wL4pX7tB"');
  assert.deepEqual(hit.map((f) => f.rule), ['generic-secret']);
  assert.equal(hit[0]!.category, 'credential');
  assert.ok(typeof hit[0]!.confidence === 'number');
  assert.deepEqual(det.scan('password = "changeme123" and card 4111 1111 1111 1111'), []);
});

test('--rules style extra directories add rules to the built-ins', async () => {
  const d = packDir({ 'x.yaml': "pack: internal\nrules:\n  - id: project-codename\n    category: other\n    severity: medium\n    pattern: '\\bPROJECT-[A-Z]{4}\\b'\n" });
  const det = await Detector.create([BUILTIN_RULES_DIR, d]);
  assert.deepEqual(det.scan('see PROJECT-ORCA now').map((f) => [f.rule, f.start, f.end]), [['project-codename', 4, 16]]);
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('lookaround and backreferences are refused with the rule id and the reason', async () => {
  const rule = (id: string, pattern: string) => `  - id: ${id}\n    category: other\n    severity: low\n    pattern: '${pattern}'\n`;
  const d = packDir({
    'l.yaml': 'pack: l\nrules:\n' + rule('ahead', 'foo(?=bar)') + rule('behind', '(?<!x)foo') + rule('backref', '(a)\\1') + rule('in-class-ok', '[(?=]x'),
  });
  await assert.rejects(loadRulePacks([d]), (err: unknown) => {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_RULE_INVALID');
    assert.match(err.message, /l\.yaml:6: rules\[0\]\(ahead\)\.pattern: lookahead \(\?=…\) is not supported/);
    assert.match(err.message, /l\.yaml:10: rules\[1\]\(behind\)\.pattern: lookbehind \(\?<!…\) is not supported/);
    assert.match(err.message, /l\.yaml:14: rules\[2\]\(backref\)\.pattern: backreference \\1 is not supported/);
    assert.doesNotMatch(err.message, /in-class-ok/);
    assert.match(err.message, /\(3 problems\)/);
    return true;
  });
});

test('the new rule fields are checked: confidence range, keywords, context, allowlist patterns, min_count', async () => {
  const d = packDir({
    'f.yaml': [
      'pack: f',
      'rules:',
      '  - id: bad-fields', //  3
      '    category: other',
      '    severity: low',
      '    pattern: x',
      '    confidence: 1.5', //  7
      '    keywords: []', //  8
      '    context: { boost: [ok], colour: red, window: 500 }', //  9
      "    allowlist: ['/(unclosed/']", //  10
      '    min_count: 0', //  11
      '',
    ].join('\n'),
  });
  await assert.rejects(loadRulePacks([d]), (err: unknown) => {
    assert.ok(err instanceof SluiceError);
    for (const re of [
      /:7: rules\[0\]\(bad-fields\)\.confidence: expected a number from 0 to 1/,
      /:8: rules\[0\]\(bad-fields\)\.keywords: expected a non-empty list of strings/,
      /:9: rules\[0\]\(bad-fields\)\.context\.colour: unknown key/,
      /:9: rules\[0\]\(bad-fields\)\.context\.window: expected an integer from 1 to 64/,
      /:10: rules\[0\]\(bad-fields\)\.allowlist\[0\]: invalid RE2 pattern/,
      /:11: rules\[0\]\(bad-fields\)\.min_count: expected an integer >= 1/,
    ]) assert.match(err.message, re);
    return true;
  });
});

test('a later directory overrides a built-in rule by id, in place; the same id twice in one directory is an error', async () => {
  const builtin = await loadRulePacks([BUILTIN_RULES_DIR]);
  const d = packDir({ 'mine.yaml': "pack: mine\nrules:\n  - id: email\n    category: pii\n    severity: critical\n    pattern: '[a-z]+@corp\\.example'\n" });
  const set = await loadRulePacks([BUILTIN_RULES_DIR, d]);
  assert.equal(set.rules.length, builtin.rules.length);
  const i = builtin.rules.findIndex((r) => r.id === 'email');
  assert.equal(set.rules[i]!.severity, 'critical');
  assert.equal(set.rules[i]!.file, join(d, 'mine.yaml'));
  assert.deepEqual(set.overridden, [{ id: 'email', file: builtin.rules[i]!.file, by: join(d, 'mine.yaml') }]);
  const twice = packDir({
    'a.yaml': "pack: a\nrules:\n  - id: same\n    category: other\n    severity: low\n    pattern: a\n",
    'b.yaml': "pack: b\nrules:\n  - id: same\n    category: other\n    severity: low\n    pattern: b\n",
  });
  await assert.rejects(loadRulePacks([BUILTIN_RULES_DIR, twice]), /b\.yaml:3: rules\[0\]\(same\)\.id: duplicate rule id "same"/);
});

test('Hyperscan and RE2 give identical findings for every built-in rule over a varied corpus', { skip: !hyperscanAvailable() }, async () => {
  const hs = await builtin('hyperscan');
  const re2 = await builtin('re2');
  const rules = hs.ruleSet.rules;
  const examples = rules.flatMap((r) => [...r.examples.match, ...r.examples.no_match]);
  const r = (() => {
    let seed = 7;
    return () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  })();
  const corpus: string[] = [
    ...examples,
    // Examples glued together: candidates now have neighbours that touch \b, keywords and context windows.
    examples.join(' '),
    examples.join(''),
    examples.join('\n'),
    // Shuffled neighbours, multi-byte text around them, and JSON escaping as prompts arrive in request bodies.
    ...Array.from({ length: 40 }, () => {
      const picks = Array.from({ length: 12 }, () => examples[Math.floor(r() * examples.length)]!);
      return picks.join(['  ', ' é ', ' 😀 ', '\t', ' 日本語 ', '", "'][Math.floor(r() * 6)]!);
    }),
    JSON.stringify({ messages: examples.slice(0, 200).map((content) => ({ role: 'user', content })) }),
    readFileSync(join(BUILTIN_RULES_DIR, '..', 'src', 'detect', 'engine.ts'), 'utf8'),
  ];
  const seen = new Set<string>();
  for (const text of corpus) {
    const a = hs.scan(text);
    const b = re2.scan(text);
    assert.deepEqual(a, b, `engines differ on ${JSON.stringify(text.slice(0, 120))}`);
    for (const f of a) seen.add(f.rule);
  }
  // Every rule fired somewhere, so the comparison covered each of them.
  assert.deepEqual(rules.map((x) => x.id).filter((id) => !seen.has(id)), []);
});
