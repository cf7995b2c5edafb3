// The demo's stand-in for the LLM providers: OpenAI chat completions and Anthropic messages, JSON or streamed,
// text or a tool call, on loopback. `x-demo-status: 500` makes it fail the way a provider does.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface DemoProvider {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  close(): Promise<void>;
}

/** The status the demo's driver asks for to simulate an outage or a rate limit. */
export const FAIL_HEADER = 'x-demo-status';

interface Turn {
  model: string;
  stream: boolean;
  /** The last user message, which the reply quotes (so findings show up in responses too). */
  prompt: string;
  /** The first tool the request offers: the model calls it. */
  tool: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const words = (s: string) => s.split(/(?<= )/);

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b: { text?: unknown }) => (typeof b?.text === 'string' ? b.text : '')).join(' ');
  return '';
}

function turnOf(body: Record<string, unknown>, fallbackModel: string): Turn {
  const messages = Array.isArray(body.messages) ? (body.messages as Array<{ role?: string; content?: unknown }>) : [];
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ name?: string; function?: { name?: string } }>) : [];
  const tool = tools[0]?.function?.name ?? tools[0]?.name ?? null;
  return {
    model: typeof body.model === 'string' ? body.model : fallbackModel,
    stream: body.stream === true,
    prompt: textOf(messages.filter((m) => m.role === 'user').at(-1)?.content),
    tool,
  };
}

function replyText(t: Turn): string {
  const quote = t.prompt.length > 80 ? `${t.prompt.slice(0, 80)}…` : t.prompt;
  return `Here is what I found about "${quote}": the request looks routine, and I would go ahead.`;
}

const toolArguments = (t: Turn) => JSON.stringify({ query: t.prompt.slice(0, 60) });
const usage = (t: Turn) => ({ input: 12 + Math.ceil(t.prompt.length / 4), output: 24 });

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions

function openai(res: ServerResponse, t: Turn, n: number): Promise<void> | void {
  const id = `chatcmpl-demo${n}`;
  const created = Math.floor(Date.now() / 1000);
  const u = usage(t);
  const callId = `call_demo${n}`;
  if (!t.stream) {
    const message = t.tool
      ? { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: t.tool, arguments: toolArguments(t) } }] }
      : { role: 'assistant', content: replyText(t) };
    json(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: t.model,
      choices: [{ index: 0, message, finish_reason: t.tool ? 'tool_calls' : 'stop' }],
      usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output },
    });
    return;
  }
  const chunk = (delta: unknown, finish: string | null, extra: object = {}) => ({ id, object: 'chat.completion.chunk', created, model: t.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra });
  const events: unknown[] = [];
  if (t.tool) {
    events.push(chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: t.tool, arguments: '' } }] }, null));
    for (const piece of words(toolArguments(t))) events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null));
    events.push(chunk({}, 'tool_calls'));
  } else {
    events.push(chunk({ role: 'assistant', content: '' }, null));
    for (const piece of words(replyText(t))) events.push(chunk({ content: piece }, null));
    events.push(chunk({}, 'stop'));
  }
  events.push({ id, object: 'chat.completion.chunk', created, model: t.model, choices: [], usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output } });
  return sse(res, [...events.map((data) => ({ data })), { data: '[DONE]' }]);
}

// ---------------------------------------------------------------------------------------------
// Anthropic messages

function anthropic(res: ServerResponse, t: Turn, n: number): Promise<void> | void {
  const id = `msg_demo${n}`;
  const u = usage(t);
  const toolId = `toolu_demo${n}`;
  if (!t.stream) {
    const content = t.tool ? [{ type: 'tool_use', id: toolId, name: t.tool, input: JSON.parse(toolArguments(t)) }] : [{ type: 'text', text: replyText(t) }];
    json(res, 200, { id, type: 'message', role: 'assistant', model: t.model, content, stop_reason: t.tool ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: u.input, output_tokens: u.output } });
    return;
  }
  const events: Array<{ event: string; data: unknown }> = [
    { event: 'message_start', data: { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: t.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: u.input, output_tokens: 1 } } } },
  ];
  if (t.tool) {
    events.push({ event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: toolId, name: t.tool, input: {} } } });
    for (const piece of words(toolArguments(t))) events.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: piece } } });
  } else {
    events.push({ event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } });
    for (const piece of words(replyText(t))) events.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } } });
  }
  events.push(
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: t.tool ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: u.output } } },
    { event: 'message_stop', data: { type: 'message_stop' } },
  );
  return sse(res, events);
}

// ---------------------------------------------------------------------------------------------
// Wire helpers

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/** Paced like a model generating tokens, so streams are visibly streams. */
async function sse(res: ServerResponse, events: Array<{ event?: string; data: unknown }>): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const e of events) {
    if (res.destroyed) return;
    res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`);
    await sleep(8);
  }
  res.end();
}

function providerError(res: ServerResponse, anthropicFormat: boolean, status: number): void {
  const message = status === 429 ? 'Rate limit reached for requests (demo)' : 'The server had an error while processing your request (demo)';
  if (anthropicFormat) {
    json(res, status, { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : 'api_error', message } });
  } else {
    json(res, status, { error: { message, type: status === 429 ? 'rate_limit_exceeded' : 'server_error', param: null, code: null } });
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, n: number): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const path = (req.url ?? '/').split('?')[0]!;
  const isAnthropic = path.endsWith('/v1/messages');
  if (req.method !== 'POST' || (!isAnthropic && !path.endsWith('/chat/completions'))) {
    json(res, 404, { error: { message: `the demo provider serves POST …/chat/completions and …/v1/messages, not ${req.method} ${path}`, type: 'invalid_request_error' } });
    return;
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    json(res, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error' } });
    return;
  }
  // A provider's think time: mostly quick, now and then slow, for a latency tail worth looking at.
  await sleep(Math.random() < 0.05 ? 400 + Math.random() * 600 : 20 + Math.random() * 120);
  const fail = Number(req.headers[FAIL_HEADER]);
  if (fail >= 400) return providerError(res, isAnthropic, fail);
  const t = turnOf(body, isAnthropic ? 'claude-3-5-haiku-latest' : 'gpt-4o-mini');
  await (isAnthropic ? anthropic(res, t, n) : openai(res, t, n));
}

export async function startDemoProvider(): Promise<DemoProvider> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res, ++n).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
