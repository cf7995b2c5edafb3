// Policy in the pipeline, end to end with the real detection engine: the official SDKs through the gateway and
// curl through intercepted CONNECT see blocks in their provider's error shape; nothing blocked reaches the provider.
import Anthropic from '@anthropic-ai/sdk';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { GoogleGenAI } from '@google/genai';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI from 'openai';
import { parseConfig } from '../../src/config/load';
import { DestinationRegistry } from '../../src/destinations/registry';
import { Exchange } from '../../src/pipeline/exchange';
import { Policy } from '../../src/policy/policy';
import { PolicyStage } from '../../src/policy/stage';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { mockReplyText } from '../fixtures/mock-provider';

const AWS_KEY = 'AKIAQ3EGUS2Z4KXGJHWB';
const POLICY = `
destinations: { sanctioned: [openai, anthropic] }
policy:
  mode: enforce
  unsanctioned: block
  content:
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-pii, action: alert, categories: [pii] }
    - { id: no-pii-out, action: block, categories: [pii], on: [response] }
  on_failure: { unparseable_body: closed }
`;

let h: Harness;
let openai: OpenAI;

before(async () => {
  h = await startHarness(POLICY, (c) => {
    c.detect.enabled = true;
    c.detect.threads = 0;
  });
  openai = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
});
after(() => h?.close());
beforeEach(() => h.skipPending());

test('a clean prompt is allowed and the decision names the policy version', async () => {
  const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
  assert.equal(r.choices[0]?.message.content, mockReplyText('hello there'));
  const x = await h.nextExchange();
  assert.equal(x.decision.action, 'allow');
  assert.match(x.decision.policyVersion ?? '', /^[0-9a-f]{16}$/);
  assert.deepEqual(x.requestFindings, []);
});

test('a secret in the prompt: the OpenAI SDK gets a 403 in its own error shape with the exchange as reference', async () => {
  const before = h.mock.requests.length;
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `deploy with ${AWS_KEY} please` }] }),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, 'SLUICE_BLOCKED');
      assert.match(err.message, /content rule "no-secrets": credential finding aws-access-key .*"AKIA\*+JHWB" in user messages\[0\]\.content/);
      const ref = /\(reference ([0-9a-f-]{36})\)/.exec(err.message)?.[1];
      assert.equal(ref, err.headers?.get('x-sluice-exchange-id'));
      return true;
    },
  );
  assert.equal(h.mock.requests.length, before, 'nothing reached the provider');
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'blocked');
  assert.equal(x.decision.rule, 'content:no-secrets');
  assert.equal(x.requestFindings?.[0]?.rule, 'aws-access-key');
  assert.ok(!JSON.stringify(x.requestFindings).includes(AWS_KEY), 'findings never carry the raw value');
});

test('the Anthropic SDK sees the block as its own error type', async () => {
  const anthropic = new Anthropic({ baseURL: `${h.sluice.gatewayUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0 });
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 50, messages: [{ role: 'user', content: `key ${AWS_KEY}` }] }),
    (err: InstanceType<typeof Anthropic.APIError>) => {
      assert.equal(err.status, 403);
      assert.match(err.message, /blocked by Sluice policy/);
      return true;
    },
  );
  assert.equal((await h.nextExchange()).decision.action, 'block');
});

test('the same policy applies inside an intercepted CONNECT tunnel', async () => {
  const before = h.mock.requests.length;
  const r = await curlThrough(h.sluice.forwardUrl, [
    '--cacert', h.sluice.caCert,
    'https://api.openai.com/v1/chat/completions',
    '-H', 'content-type: application/json',
    '--data-binary', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `tunnel ${AWS_KEY}` }] }),
  ]);
  assert.equal(r.status, 403, r.stderr);
  assert.equal(JSON.parse(r.body).error.code, 'SLUICE_BLOCKED');
  assert.equal(h.mock.requests.length, before);
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'connect');
  assert.equal(x.decision.rule, 'content:no-secrets');
});

test('PII in the request is an alert and goes upstream; the same PII echoed in a held response is blocked before the client sees it', async () => {
  const before = h.mock.requests.length;
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'my ssn is 536-22-8461' }] }),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 403);
      assert.match(err.message, /content rule "no-pii-out" on the response: pii finding us-ssn .* in assistant choices\[0\]\.message\.content/);
      return true;
    },
  );
  assert.equal(h.mock.requests.length, before + 1, 'the request itself was allowed');
  const x = await h.nextExchange();
  assert.equal(x.decision.action, 'alert');
  assert.equal(x.decision.rule, 'content:watch-pii');
  assert.equal(x.outcome, 'blocked');
  assert.equal(x.responseDecision?.action, 'block');
  assert.deepEqual(x.responseFindings?.map((f) => [f.rule, f.role, f.path]), [['us-ssn', 'assistant', 'choices[0].message.content']]);

  // A clean answer on the same route is held just as briefly and then delivered whole.
  const ok = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'nothing personal here' }] });
  assert.equal(ok.choices[0]?.message.content, mockReplyText('nothing personal here'));
  assert.equal((await h.nextExchange()).outcome, 'completed');
});

test('a stream is cut mid-way when PII appears in it: the OpenAI SDK raises a clean APIError, the provider is aborted', async () => {
  // One character per event, 50 ms apart: the SSN straddles many events and is found while the stream runs.
  const stream = await openai.chat.completions.create(
    { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'ssn 536-22-8461 then a long tail of harmless words' }] },
    { headers: { 'x-mock-behavior': 'slow', 'x-mock-chunks': '80' } },
  );
  let got = '';
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) got += chunk.choices[0]?.delta?.content ?? '';
    })(),
    (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.match(err.message, /blocked by Sluice policy: content rule "no-pii-out" on the response stream: pii finding us-ssn/);
      assert.equal((err.error as { code?: string }).code, 'SLUICE_BLOCKED');
      return true;
    },
  );
  assert.ok(got.length > 0 && !got.includes('harmless words'), `the client got the start, not the end: ${JSON.stringify(got)}`);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'blocked');
  assert.equal(x.responseDecision?.action, 'block');
  assert.equal(x.decision.action, 'alert', 'the request itself was allowed (with the PII alert)');
  await h.mock.waitForAborted(1);
});

test('streamed tool-call arguments are inspected as they arrive: PII in them cuts the stream', async () => {
  const tools = [{ type: 'function' as const, function: { name: 'store', parameters: { type: 'object', properties: { echo: { type: 'string' } } } } }];
  const stream = await openai.chat.completions.create(
    { model: 'gpt-4o-mini', stream: true, tools, messages: [{ role: 'user', content: 'ssn 536-22-8461 then a long tail of harmless words' }] },
    { headers: { 'x-mock-behavior': 'slow', 'x-mock-chunks': '60' } },
  );
  await assert.rejects(
    (async () => {
      for await (const _ of stream) void _;
    })(),
    /content rule "no-pii-out" on the response stream: pii finding us-ssn .* in tool_call:store toolCalls\[0\]\.arguments/,
  );
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'blocked');
});

test('the Anthropic SDK sees a cut stream as an error event', async () => {
  const anthropic = new Anthropic({ baseURL: `${h.sluice.gatewayUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0 });
  const stream = await anthropic.messages.create(
    { model: 'claude-3-5-haiku-latest', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'ssn 536-22-8461 then a long tail of harmless words' }] },
    { headers: { 'x-mock-behavior': 'slow', 'x-mock-chunks': '80' } },
  );
  await assert.rejects(
    (async () => {
      for await (const _ of stream) void _;
    })(),
    // The SDK's message is the event's JSON, quotes escaped.
    /blocked by Sluice policy: content rule \\?"no-pii-out\\?" on the response stream/,
  );
  assert.equal((await h.nextExchange()).outcome, 'blocked');
});

test('tool calls the model makes are scanned: their arguments give findings on the response', async () => {
  const tools = [{ type: 'function' as const, function: { name: 'store', parameters: { type: 'object', properties: { echo: { type: 'string' } } } } }];
  const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: [{ role: 'user', content: 'pay DE89370400440532013000 and store it' }] });
  assert.equal(r.choices[0]?.message.tool_calls?.[0]?.type, 'function');
  const x = await h.nextExchange();
  await x.responseInspection;
  const f = x.responseFindings?.find((e) => e.role === 'tool_call:store');
  assert.equal(f?.rule, 'iban');
  assert.equal(f?.path, 'toolCalls[0].arguments');
  assert.equal(x.responseDecision, null, 'no rule covers financial data in responses');
});

test('an unsanctioned provider is blocked before anything leaves; an unparseable body is blocked when on_failure says closed', async () => {
  const deepseek = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/deepseek`, apiKey: 'sk-test', maxRetries: 0 });
  await assert.rejects(deepseek.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'hi' }] }), (err: InstanceType<typeof OpenAI.APIError>) => {
    assert.equal(err.status, 403);
    assert.match(err.message, /deepseek \(api\.deepseek\.com\) is not a sanctioned provider/);
    return true;
  });
  assert.equal((await h.nextExchange()).decision.rule, 'unsanctioned');

  const res = await fetch(`${h.sluice.gatewayUrl}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "gpt-4o", "messages": [' });
  assert.equal(res.status, 403);
  const body = (await res.json()) as { error: { message: string } };
  assert.match(body.error.message, /could not be inspected .* policy\.on_failure\.unparseable_body is closed/);
  const x = await h.nextExchange();
  assert.equal(x.decision.rule, 'on_failure.unparseable_body');
  const stats = (await (await fetch(`${h.sluice.adminUrl}/stats`)).json()) as { policy: { mode: string; decisions: Record<string, number>; failures: Record<string, { closed: number }> } };
  assert.equal(stats.policy.mode, 'enforce');
  assert.ok(stats.policy.decisions.block >= 4);
  assert.equal(stats.policy.failures.unparseable_body?.closed, 1);
});

test('a request body over limits.max_inspect_bytes follows on_failure.oversized_body: closed blocks, open forwards with an alert', async () => {
  const big = 'lorem ipsum dolor sit amet '.repeat(100);
  for (const mode of ['closed', 'open'] as const) {
    const o = await startHarness(`limits: { max_inspect_bytes: 1024 }\npolicy: { mode: enforce, on_failure: { oversized_body: ${mode} } }\n`, (c) => {
      c.detect.enabled = true;
      c.detect.threads = 0;
    });
    try {
      const client = new OpenAI({ baseURL: `${o.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
      const ask = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: big }] });
      if (mode === 'closed') {
        await assert.rejects(ask, (err: InstanceType<typeof OpenAI.APIError>) => {
          assert.equal(err.status, 403);
          assert.match(err.message, /over limits\.max_inspect_bytes \(1024\).*policy\.on_failure\.oversized_body is closed/);
          return true;
        });
        assert.equal(o.mock.requests.length, 0);
      } else {
        assert.equal((await ask).choices[0]?.message.content, mockReplyText(big));
        assert.equal(o.mock.requests.length, 1);
      }
      const x = await o.nextExchange();
      assert.equal(x.decision.rule, 'on_failure.oversized_body');
      assert.equal(x.decision.action, mode === 'closed' ? 'block' : 'alert');
      assert.equal(x.requestFindings, null, 'nothing was scanned');
    } finally {
      await o.close();
    }
  }
});

test('monitor mode forwards what enforce would block, recorded as an alert', async () => {
  const m = await startHarness(POLICY.replace('mode: enforce', 'mode: monitor'), (c) => {
    c.detect.enabled = true;
    c.detect.threads = 0;
  });
  try {
    const client = new OpenAI({ baseURL: `${m.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `watch ${AWS_KEY}` }] });
    assert.ok(r.choices[0]?.message.content);
    const x = await m.nextExchange();
    assert.equal(x.decision.action, 'alert');
    assert.match(x.decision.reason ?? '', /^would block \(policy\.mode is monitor\)/);
  } finally {
    await m.close();
  }
});

test('redaction, per provider format: the provider receives only masked values, in valid JSON of its own format', async () => {
  const r = await startHarness(
    POLICY.replace('action: block, categories: [credential]', 'action: redact, categories: [credential]').replace('[openai, anthropic]', '[openai, anthropic, gemini, bedrock]'),
    (c) => {
      c.detect.enabled = true;
      c.detect.threads = 0;
    },
  );
  const lastBody = () => JSON.parse(r.mock.requests.at(-1)!.body.toString()) as Record<string, any>;
  try {
    // OpenAI chat: a user message and an assistant tool call's arguments (a JSON string).
    const openaiClient = new OpenAI({ baseURL: `${r.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await openaiClient.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'user', content: `use ${AWS_KEY} for the deploy` },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'deploy', arguments: JSON.stringify({ key: AWS_KEY }) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'deployed' },
      ],
    });
    let sent = lastBody();
    assert.equal(sent.messages[0].content, 'use AKIA************JHWB for the deploy');
    assert.deepEqual(JSON.parse(sent.messages[1].tool_calls[0].function.arguments), { key: 'AKIA************JHWB' });
    let x = await r.nextExchange();
    assert.equal(x.decision.action, 'redact');
    assert.match(x.decision.reason ?? '', /2 values masked before forwarding/);

    // Anthropic: a tool_use input is an object and stays one.
    const anthropic = new Anthropic({ baseURL: `${r.sluice.gatewayUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0 });
    await anthropic.messages.create({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 50,
      system: `ops key ${AWS_KEY}`,
      messages: [
        { role: 'user', content: 'deploy' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'deploy', input: { key: AWS_KEY } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'ok' }] },
      ],
    });
    sent = lastBody();
    assert.equal(sent.system, 'ops key AKIA************JHWB');
    assert.deepEqual(sent.messages[1].content[0].input, { key: 'AKIA************JHWB' });
    assert.equal((await r.nextExchange()).decision.action, 'redact');

    // Gemini: contents[].parts[].text.
    const ai = new GoogleGenAI({ apiKey: 'g-key', httpOptions: { baseUrl: `${r.sluice.gatewayUrl}/gemini` } });
    await ai.models.generateContent({ model: 'gemini-2.0-flash', contents: `gemini ${AWS_KEY}` });
    sent = lastBody();
    assert.equal(sent.contents[0].parts[0].text, 'gemini AKIA************JHWB');
    assert.equal((await r.nextExchange()).decision.action, 'redact');

    // Bedrock with an API key (Bearer): the body is not signed, so it is rewritten like the others.
    const res = await fetch(`${r.sluice.gatewayUrl}/bedrock/eu-central-1/model/anthropic.claude-3-haiku-20240307-v1:0/converse`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer bedrock-api-key-abc' },
      body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: `bedrock ${AWS_KEY}` }] }] }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(lastBody().messages[0].content[0].text, 'bedrock AKIA************JHWB');
    assert.equal((await r.nextExchange()).decision.action, 'redact');

    // Bedrock with SigV4: the signature covers the body, so a rewritten body would be refused upstream; Sluice blocks instead.
    const before = r.mock.requests.length;
    const bedrock = new BedrockRuntimeClient({
      region: 'eu-central-1',
      endpoint: `${r.sluice.gatewayUrl}/bedrock/eu-central-1`,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler(),
    });
    try {
      await assert.rejects(
        bedrock.send(new ConverseCommand({ modelId: 'anthropic.claude-3-haiku-20240307-v1:0', messages: [{ role: 'user', content: [{ text: `bedrock ${AWS_KEY}` }] }] })),
        (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.$metadata?.httpStatusCode, 403);
          return true;
        },
      );
    } finally {
      bedrock.destroy();
    }
    assert.equal(r.mock.requests.length, before);
    x = await r.nextExchange();
    assert.equal(x.decision.action, 'block');
    assert.match(x.decision.reason ?? '', /SigV4-signed over its body/);
    for (const req of r.mock.requests) assert.ok(!req.body.toString().includes(AWS_KEY), 'no raw key ever reached the provider');
  } finally {
    await r.close();
  }
});

test('a reload mid-exchange: the exchange finishes under the policy it started with, the next one gets the new one', () => {
  const config = parseConfig('destinations: { sanctioned: [openai] }\npolicy: { mode: enforce, unsanctioned: alert }\n');
  const registry = new DestinationRegistry(config);
  const stage = new PolicyStage(new Policy(config.policy));
  const mk = () => new Exchange('gateway', registry.byHost('api.deepseek.com'), { method: 'POST', path: '/', query: '', contentType: '' }, '', [], 0);
  const inFlight = mk();
  stage.requestHead(inFlight);
  const stricter = new Policy({ ...config.policy, unsanctioned: 'block' });
  stage.swap(stricter);
  stage.requestBody(inFlight, Buffer.alloc(0));
  assert.equal(inFlight.decision.action, 'alert');
  const next = mk();
  stage.requestHead(next);
  stage.requestBody(next, Buffer.alloc(0));
  assert.equal(next.decision.action, 'block');
  assert.equal(next.decision.policyVersion, stricter.version);
  assert.notEqual(inFlight.decision.policyVersion, stricter.version);
});
