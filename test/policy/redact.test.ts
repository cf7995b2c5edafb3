// Redaction of a request body: findings masked inside the JSON values that held them, JSON still valid.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExchangeFinding } from '../../src/pipeline/exchange';
import { parsePath, redactBody } from '../../src/policy/redact';

const f = (path: string, start: number, end: number, masked: string, rule = 'aws-access-key'): ExchangeFinding => ({
  rule, category: 'credential', severity: 'critical', confidence: 0.9, role: 'user', path, start, end, masked,
});

test('parsePath reads the adapters\' path form', () => {
  assert.deepEqual(parsePath('messages[2].content[0].text'), ['messages', 2, 'content', 0, 'text']);
  assert.deepEqual(parsePath('contents[0]["odd.key"].text'), ['contents', 0, 'odd.key', 'text']);
  assert.deepEqual(parsePath('system'), ['system']);
  assert.equal(parsePath('a[x]'), null);
});

test('strings are masked in place; structured values are masked in their JSON text and stay objects', () => {
  const body = Buffer.from(JSON.stringify({
    model: 'm',
    messages: [
      { role: 'user', content: 'key AKIAQ3EGUS2Z4KXGJHWB and ssn 536-22-8461' },
      { role: 'assistant', content: [{ type: 'tool_use', input: { key: 'AKIAQ3EGUS2Z4KXGJHWB', n: 1 } }] },
    ],
  }));
  const inputText = JSON.stringify({ key: 'AKIAQ3EGUS2Z4KXGJHWB', n: 1 });
  const at = inputText.indexOf('AKIA');
  const r = redactBody(body, [
    f('messages[0].content', 4, 24, 'AKIA************JHWB'),
    f('messages[0].content', 33, 44, '53*******61', 'us-ssn'),
    f('messages[1].content[0].input', at, at + 20, 'AKIA************JHWB'),
  ]);
  assert.ok(r.ok);
  const out = JSON.parse(r.body.toString());
  assert.equal(out.messages[0].content, 'key AKIA************JHWB and ssn 53*******61');
  assert.deepEqual(out.messages[1].content[0].input, { key: 'AKIA************JHWB', n: 1 });
  assert.equal(r.masked, 3);
  assert.ok(!r.body.toString().includes('AKIAQ3EGUS2Z4KXGJHWB'));
});

test('a mask that would break structured JSON replaces the value with a marker; a bad path or body is an error', () => {
  const body = Buffer.from(JSON.stringify({ args: { a: 'x' } }));
  const r = redactBody(body, [f('args', 0, 5, '*****')]);
  assert.ok(r.ok);
  assert.equal(JSON.parse(r.body.toString()).args, '[redacted by Sluice: aws-access-key]');
  assert.deepEqual(redactBody(body, [f('nope[3]', 0, 1, '*')]), { ok: false, why: 'no value at nope[3]' });
  assert.equal(redactBody(Buffer.from('{oops'), []).ok, false);
});
