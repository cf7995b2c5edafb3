// Tests for context-word scoring: whole-word matching, identifier spellings, window trimming, clamping.
// Deltas are fixed constants so confidence values can be asserted exactly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOOST_DELTA, DAMP_DELTA, contextDelta, contextWindow, hasWord, scoreConfidence } from '../../../src/detect/validators/index.js';

const ctx = (before: string, after = '') => ({ before, after });

test('no words, no delta', () => {
  assert.equal(contextDelta(ctx('', '')), 0);
  assert.equal(contextDelta(ctx('hello there ', ' thanks')), 0);
});

test('default boost and damp words', () => {
  assert.equal(contextDelta(ctx('My SSN is ')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('social security number: ')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('', ' is my card')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('for example ')), DAMP_DELTA);
  assert.equal(contextDelta(ctx('test card: ')), BOOST_DELTA + DAMP_DELTA);
  assert.equal(contextDelta(ctx('lorem ipsum ')), DAMP_DELTA);
});

test('whole words only, plurals allowed', () => {
  assert.equal(contextDelta(ctx('the latest release ')), 0);
  assert.equal(contextDelta(ctx('discarded ')), 0);
  assert.equal(contextDelta(ctx('tokenizer output ')), 0);
  assert.equal(contextDelta(ctx('tokens: ')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('samples ')), DAMP_DELTA);
});

test('identifier spellings', () => {
  assert.equal(contextDelta(ctx('"cardNumber": "')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('"credit_card": "')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('social-security: ')), BOOST_DELTA);
  assert.equal(contextDelta(ctx('socialSecurity=')), BOOST_DELTA);
  assert.equal(hasWord('api key', ['api key']), true);
  assert.equal(hasWord('apikey', ['api key']), true);
  assert.equal(hasWord('api_key', ['api key']), true);
  assert.equal(hasWord('rapid key', ['api key']), false);
});

test('window limits and trims cut words', () => {
  const far = 'ssn' + ' '.repeat(50);
  assert.equal(contextDelta(ctx(far)), 0);
  assert.equal(contextDelta(ctx(far), { window: 64 }), BOOST_DELTA);
  // "latest" cut to "test" by the window must not damp.
  const cut = 'la' + 'test' + ' '.repeat(36);
  assert.equal(cut.length, 42);
  assert.equal(contextDelta(ctx(cut), { window: 40 }), 0);
  assert.equal(contextDelta(ctx('test' + ' '.repeat(36)), { window: 40 }), DAMP_DELTA);
  // Same on the after side: "testimony" cut to "test" stays out.
  assert.equal(contextDelta(ctx('', ' '.repeat(36) + 'testimony'), { window: 40 }), 0);
  assert.equal(contextWindow(ctx('abc', 'def'), 40).startsWith('abc'), true);
});

test('words do not fuse across the match', () => {
  // before ends "car", after starts "d": must not read as "card".
  assert.equal(contextDelta(ctx('car', 'd')), 0);
});

test('custom lists', () => {
  assert.equal(contextDelta(ctx('routing '), { boost: ['routing'], damp: [] }), BOOST_DELTA);
  assert.equal(contextDelta(ctx('ssn '), { boost: ['routing'], damp: [] }), 0);
  assert.equal(contextDelta(ctx('demo '), { boost: [], damp: ['demo'] }), DAMP_DELTA);
});

test('scoreConfidence clamps and rounds', () => {
  assert.equal(scoreConfidence(0.9, ctx('ssn ')), 1);
  assert.equal(scoreConfidence(0.2, ctx('example ')), 0);
  assert.equal(scoreConfidence(0.5, ctx('example ')), 0.15);
  assert.equal(scoreConfidence(0.5, ctx('')), 0.5);
  assert.equal(scoreConfidence(0.5, ctx('test token ')), 0.4);
});
