import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI from 'openai';
import type { Exchange } from '../../src/pipeline/exchange';
import type { Stage } from '../../src/pipeline/pipeline';
import { startHarness, type Harness } from '../fixtures/harness';

// Stages as later issues will write them: an async request-side check that can block,
// a response-side observer, and one that throws.
const seenChunks = new Map<string, number>();
const order: string[] = [];
const policy: Stage = {
  name: 'policy',
  requestHead(x) {
    order.push(`head:${x.info.path}`);
  },
  async requestBody(x) {
    await new Promise((r) => setTimeout(r, 5)); // detection happens off the event loop
    order.push('body');
    if (x.request?.segments.some((s) => s.text.includes('ACME-SECRET'))) x.block('policy', 'secret in prompt');
  },
  responseHead(x) {
    order.push(`responseHead:${x.status}`);
  },
  responseChunk(x, chunk) {
    seenChunks.set(x.id, (seenChunks.get(x.id) ?? 0) + chunk.length);
  },
};
const faulty: Stage = {
  name: 'faulty',
  requestBody(x) {
    if (x.request?.segments.some((s) => s.text === 'trip the faulty stage')) throw new Error('boom');
  },
};

let h: Harness;
before(async () => {
  h = await startHarness('', undefined, [policy, faulty]);
});
after(() => h.close());
beforeEach(() => h.skipPending());

test('stages run in order and see the decoded response as it streams', async () => {
  order.length = 0;
  const openai = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'k', maxRetries: 0 });
  const stream = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
  for await (const _ of stream);
  const x: Exchange = await h.nextExchange();
  assert.deepEqual(order, ['head:/v1/chat/completions', 'body', 'responseHead:200']);
  assert.equal(seenChunks.get(x.id), x.responseBytes);
});

test('a blocking stage answers in the provider error shape and nothing goes upstream', async () => {
  const before = h.mock.requests.length;
  const openai = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'k', maxRetries: 0 });
  await assert.rejects(openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'key ACME-SECRET-1' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.PermissionDeniedError);
    assert.match(err.message, /secret in prompt/);
    return true;
  });
  let x = await h.nextExchange();
  assert.equal(x.outcome, 'blocked');
  // Every record names the policy in force, even when another stage took the decision.
  const { policyVersion, ...decision } = x.decision;
  assert.deepEqual(decision, { action: 'block', reason: 'secret in prompt', by: 'policy' });
  assert.match(policyVersion ?? '', /^[0-9a-f]{16}$/);

  const anthropic = new Anthropic({ baseURL: `${h.sluice.gatewayUrl}/anthropic`, apiKey: 'k', maxRetries: 0 });
  await assert.rejects(
    anthropic.messages.create({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'ACME-SECRET-2' }] }),
    (err: unknown) => err instanceof Anthropic.PermissionDeniedError,
  );
  x = await h.nextExchange();
  assert.equal(x.outcome, 'blocked');
  assert.equal(h.mock.requests.length, before);
});

test('a stage that throws is recorded; the exchange still completes', async () => {
  const res = await fetch(`${h.sluice.gatewayUrl}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'trip the faulty stage' }] }),
  });
  assert.equal(res.status, 200);
  await res.json();
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'completed');
  assert.equal(x.error?.code, 'SLUICE_INTERNAL');
  assert.match(x.error?.message ?? '', /faulty\.requestBody failed: boom/);
});
