// Gemini and Bedrock end-to-end through the gateway with their official SDKs: the SDKs decode
// Sluice's relayed SSE, JSON-array and AWS event-stream bodies themselves, so framing must be exact.
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { GoogleGenAI } from '@google/genai';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { MOCK_USAGE, mockReplyText } from '../fixtures/mock-provider';
import { startHarness, type Harness } from '../fixtures/harness';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(() => h.close());
beforeEach(() => h.skipPending());

const text = (segments: Array<{ text: string }> | undefined) => (segments ?? []).map((s) => s.text).join('');

test('Gemini SDK: generateContent and generateContentStream', async () => {
  const ai = new GoogleGenAI({ apiKey: 'g-key', httpOptions: { baseUrl: `${h.sluice.gatewayUrl}/gemini` } });
  const r = await ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'gemini sdk hi' });
  assert.equal(r.text, mockReplyText('gemini sdk hi'));
  let x = await h.nextExchange();
  assert.equal(x.destination.provider, 'gemini');
  assert.equal(x.request?.model, 'gemini-2.0-flash');
  assert.equal(x.response?.usage?.totalTokens, MOCK_USAGE.totalTokens);

  const stream = await ai.models.generateContentStream({ model: 'gemini-2.0-flash', contents: 'gemini sdk stream' });
  let streamed = '';
  for await (const c of stream) streamed += c.text ?? '';
  assert.equal(streamed, mockReplyText('gemini sdk stream'));
  x = await h.nextExchange();
  assert.equal(x.request?.stream, true);
  assert.equal(text(x.response?.text), streamed);
  assert.deepEqual(x.response?.errors, []);
});

test('Bedrock SDK: Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream', async () => {
  const client = new BedrockRuntimeClient({
    region: 'eu-central-1',
    endpoint: `${h.sluice.gatewayUrl}/bedrock/eu-central-1`,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    maxAttempts: 1,
    // The SDK speaks HTTP/2 to Bedrock by default; the gateway listener is HTTP/1.1.
    requestHandler: new NodeHttpHandler(),
  });
  try {
    const modelId = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
    const c = await client.send(new ConverseCommand({ modelId, messages: [{ role: 'user', content: [{ text: 'bedrock sdk hi' }] }] }));
    assert.equal(c.output?.message?.content?.[0]?.text, mockReplyText('bedrock sdk hi'));
    let x = await h.nextExchange();
    assert.equal(x.destination.jurisdiction, 'EU');
    assert.equal(x.request?.model, modelId);

    const cs = await client.send(new ConverseStreamCommand({ modelId, messages: [{ role: 'user', content: [{ text: 'bedrock sdk stream' }] }] }));
    let streamed = '';
    let stop = '';
    for await (const e of cs.stream!) {
      streamed += e.contentBlockDelta?.delta?.text ?? '';
      stop = e.messageStop?.stopReason ?? stop;
    }
    assert.equal(streamed, mockReplyText('bedrock sdk stream'));
    x = await h.nextExchange();
    assert.equal(x.request?.operation, 'converseStream');
    assert.equal(text(x.response?.text), streamed);
    assert.equal(x.response?.finishReason, stop);
    assert.deepEqual(x.response?.errors, []);

    const native = { anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, messages: [{ role: 'user', content: 'invoke sdk hi' }] };
    const inv = await client.send(new InvokeModelCommand({ modelId, contentType: 'application/json', body: JSON.stringify(native) }));
    const msg = JSON.parse(Buffer.from(inv.body).toString()) as { content: Array<{ text: string }> };
    assert.equal(msg.content[0]?.text, mockReplyText('invoke sdk hi'));
    x = await h.nextExchange();
    assert.equal(text(x.response?.text), mockReplyText('invoke sdk hi'));

    const ivs = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, contentType: 'application/json', body: JSON.stringify(native) }));
    let invoked = '';
    for await (const e of ivs.body!) {
      const ev = JSON.parse(Buffer.from(e.chunk?.bytes ?? []).toString() || '{}') as { delta?: { text?: string } };
      invoked += ev.delta?.text ?? '';
    }
    assert.equal(invoked, mockReplyText('invoke sdk hi'));
    x = await h.nextExchange();
    assert.equal(x.request?.operation, 'invokeStream');
    assert.equal(text(x.response?.text), invoked);
  } finally {
    client.destroy();
  }
});
