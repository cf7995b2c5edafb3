// Payloads shared by the benchmarks: sized like a real short chat turn so header and body handling both show
// in the cost. bench/proxy.ts and bench/mitm.ts send and receive exactly these bytes, from the same mock routes.

import type { TemplatedApp } from '../src/http/uws';

const SYSTEM_PROMPT =
  'You are a careful assistant for an internal engineering team. Answer concisely, cite the file and line ' +
  'when you refer to code, and say so plainly when you are not sure. Never invent configuration keys.';
const USER_PROMPT =
  'Our service keeps timing out when it calls the billing API during the nightly batch. The logs show ' +
  'ECONNRESET after roughly 30 seconds, always on the first request after an idle period of a few minutes. ' +
  'We use a keep-alive agent with maxSockets 50 and the default keepAliveMsecs. The billing team says their ' +
  'load balancer drops idle connections after 60 seconds. What is the most likely cause, and what should we ' +
  'change first? Please keep the answer under ten lines and include the one setting we should try. For ' +
  'context: Node 20, undici 7 for outbound calls, and the batch runs on two pods behind an internal NAT gateway.';

export const REQUEST_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: USER_PROMPT },
  ],
  temperature: 0.2,
  max_tokens: 400,
  user: 'bench-user-0001',
});

export const MOCK_RESPONSE = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-BENCH8f3b1c2d4e5a6978b0c1d2e3f4a5',
    object: 'chat.completion',
    created: 1795600000,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content:
            'The most likely cause is a stale pooled socket: your agent reuses a connection the billing load ' +
            'balancer has already dropped, so the first write after the idle period gets ECONNRESET. Set the ' +
            "agent's free-socket timeout below the balancer's 60 s idle limit (for example keepAliveTimeout: " +
            '30000 or freeSocketTimeout: 30000) so idle sockets are closed on your side first. Also retry ' +
            'idempotent requests once on ECONNRESET, and log the socket reuse count to confirm the diagnosis.',
          refusal: null,
          annotations: [],
        },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      prompt_tokens: 148,
      completion_tokens: 97,
      total_tokens: 245,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_bench01234',
  }),
);

export const CHAT_PATH = '/v1/chat/completions';

/** The mock provider's routes (plain or TLS app): the chat answer once the whole request has arrived, 404 else. */
export function routeMockProvider(app: TemplatedApp): void {
  app.post(CHAT_PATH, (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // Answer only after the whole request arrived, as a real upstream would; the body itself is not needed.
    res.onData((_chunk, isLast) => {
      if (!isLast || aborted) return;
      res.cork(() => {
        res
          .writeStatus('200 OK')
          .writeHeader('content-type', 'application/json')
          .writeHeader('openai-processing-ms', '412')
          .writeHeader('x-request-id', 'req_bench0001')
          .end(MOCK_RESPONSE);
      });
    });
  });
  app.any('/*', (res) => {
    res.cork(() => res.writeStatus('404 Not Found').end('not found'));
  });
}
