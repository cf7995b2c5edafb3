// Tests for the RE2 engine: UTF-16 spans over multi-byte text, caseless rules, empty matches, invalid rules.
// RE2 is a plain npm dependency, so nothing here skips.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Re2Engine } from '../../src/detect/re2.js';
import { createEngine, type DetectorPattern } from '../../src/detect/engine.js';
import { SluiceError } from '../../src/errors.js';

const slices = (text: string, ms: ReadonlyArray<{ start: number; end: number }>) =>
  ms.map((m) => text.slice(m.start, m.end));

test('spans are UTF-16 offsets across emoji, CJK and accents', () => {
  const engine = new Re2Engine([
    { id: 1, pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b' },
    { id: 2, pattern: '密码[:：]\\S+' },
    { id: 3, pattern: 'café' },
  ]);
  const text = '😀 ssn 123-45-6789 ✅ 密码：hunter2 — café 🇫🇷 987-65-4321';
  const ms = engine.scan(text);
  assert.deepEqual(slices(text, ms), ['123-45-6789', '密码：hunter2', 'café', '987-65-4321']);
  assert.deepEqual(ms.map((m) => m.id), [1, 2, 3, 1]);
  assert.equal(ms[0]!.start, 7, 'the emoji counts as two UTF-16 units');
});

test('results are sorted by start, then id; repeated and adjacent matches are separate', () => {
  const engine = new Re2Engine([{ id: 9, pattern: 'ab' }, { id: 4, pattern: 'a' }]);
  assert.deepEqual(engine.scan('abab'), [
    { id: 4, start: 0, end: 1 },
    { id: 9, start: 0, end: 2 },
    { id: 4, start: 2, end: 3 },
    { id: 9, start: 2, end: 4 },
  ]);
});

test('caseless rules fold case, including non-ASCII letters; others do not', () => {
  const engine = new Re2Engine([
    { id: 1, pattern: 'secret', caseless: true },
    { id: 2, pattern: 'Token' },
    { id: 3, pattern: 'straße', caseless: true },
  ]);
  const text = 'SeCrEt token Token STRAßE';
  assert.deepEqual(slices(text, engine.scan(text)), ['SeCrEt', 'Token', 'STRAßE']);
});

test('empty matches advance one code point and never split a surrogate pair', () => {
  const engine = new Re2Engine([{ id: 1, pattern: 'a*' }]);
  const text = 'xaa😀';
  assert.deepEqual(engine.scan(text), [
    { id: 1, start: 0, end: 0 },
    { id: 1, start: 1, end: 3 },
    { id: 1, start: 3, end: 3 },
    { id: 1, start: 5, end: 5 },
  ]);
  assert.deepEqual(engine.scan(''), [{ id: 1, start: 0, end: 0 }]);
});

test('\\b and ^ see context before the search position', () => {
  const engine = new Re2Engine([{ id: 1, pattern: '^\\w+' }, { id: 2, pattern: '\\bid\\d' }]);
  assert.deepEqual(engine.scan('id1 xid2 id3'), [
    { id: 1, start: 0, end: 3 },
    { id: 2, start: 0, end: 3 },
    { id: 2, start: 9, end: 12 },
  ]);
});

test('an invalid rule throws SLUICE_RULE_INVALID naming its id', () => {
  const rules: DetectorPattern[] = [{ id: 1, pattern: 'ok' }, { id: 42, pattern: '(unclosed' }];
  for (const build of [() => new Re2Engine(rules), () => createEngine(rules), () => createEngine(rules, 're2')]) {
    assert.throws(build, (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, 'SLUICE_RULE_INVALID');
      assert.match(err.message, /rule 42/);
      return true;
    });
  }
  // RE2 has no lookaround or backreferences: those are rule errors too, not silent misses.
  assert.throws(() => new Re2Engine([{ id: 7, pattern: '(?=x)y' }]), { code: 'SLUICE_RULE_INVALID' });
});

test('createEngine honours prefer: re2', () => {
  assert.equal(createEngine([{ id: 1, pattern: 'x' }], 're2').name, 're2');
});
