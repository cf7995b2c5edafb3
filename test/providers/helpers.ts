// Test helpers for the provider adapters: chunk-splitting drivers and wire-format builders.
// Every streaming test feeds the same body whole, byte by byte and in random pieces, and demands one answer.

import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { encodeEventStreamMessage } from '../../src/providers/eventstream.js';
import type { Adapter, ParsedRequest, ParsedResponse, RequestInfo, ResponseParserOptions } from '../../src/providers/types.js';

/** Small deterministic PRNG so a failing random split can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomSplit(buf: Buffer, seed: number, maxPiece = 17): Buffer[] {
  const r = rng(seed);
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const n = 1 + Math.floor(r() * maxPiece);
    out.push(buf.subarray(p, Math.min(buf.length, p + n)));
    p += n;
  }
  return out;
}

export function byteSplit(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out;
}

/** The ways a body is cut for every streaming test: whole, per byte, and random pieces (several seeds). */
export function splits(buf: Buffer): Array<{ name: string; chunks: Buffer[] }> {
  return [
    { name: 'one chunk', chunks: [buf] },
    { name: '1-byte splits', chunks: byteSplit(buf) },
    { name: 'random splits seed 1', chunks: randomSplit(buf, 1) },
    { name: 'random splits seed 2', chunks: randomSplit(buf, 2, 5) },
    { name: 'random splits seed 3', chunks: randomSplit(buf, 3, 200) },
  ];
}

/** Runs `consume` over every split of `body`, asserts they all agree, and returns the agreed result. */
export function sameForAllSplits<T>(body: Buffer, consume: (chunks: Buffer[]) => T): T {
  let first: T | undefined;
  let firstName = '';
  for (const { name, chunks } of splits(body)) {
    const got = consume(chunks);
    if (first === undefined) {
      first = got;
      firstName = name;
    } else assert.deepEqual(got, first, `${name} differs from ${firstName}`);
  }
  return first!;
}

export function req(path: string, extra: Partial<RequestInfo> = {}): RequestInfo {
  return { method: 'POST', path, query: '', contentType: 'application/json', ...extra };
}

export function jsonBuf(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

/** Parses a response through an adapter for every split of the body, asserting identical results. */
export function parseResponse(
  adapter: Adapter,
  info: RequestInfo,
  body: Buffer | string,
  contentType: string,
  opts: { status?: number; parsedRequest?: ParsedRequest; options?: ResponseParserOptions } = {},
): ParsedResponse {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const pr = opts.parsedRequest ?? { parsed: true, operation: 'unknown', stream: false, segments: [], tools: [] };
  return sameForAllSplits(buf, (chunks) => {
    const p = adapter.responseParser(info, pr, { status: opts.status ?? 200, contentType }, opts.options);
    for (const c of chunks) p.push(c);
    return p.finish();
  });
}

/** An SSE body from events; `eol` lets tests use CRLF so splits land between CR and LF. */
export function sse(events: Array<{ event?: string; data: unknown } | string>, eol = '\n'): string {
  let out = '';
  for (const e of events) {
    if (typeof e === 'string') {
      out += `data: ${e}${eol}${eol}`;
      continue;
    }
    if (e.event !== undefined) out += `event: ${e.event}${eol}`;
    out += `data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}${eol}${eol}`;
  }
  return out;
}

/** Anthropic-style SSE where the event name mirrors the data's `type`. */
export function typedSse(events: Array<{ type: string } & Record<string, unknown>>, eol = '\n'): string {
  return sse(
    events.map((data) => ({ event: data.type, data })),
    eol,
  );
}

/** A Bedrock event-stream event frame with the usual three headers. */
export function esEvent(eventType: string, payload: unknown): Buffer {
  return encodeEventStreamMessage(
    { ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload), 'utf8'),
  );
}

export function esException(exceptionType: string, message: string): Buffer {
  return encodeEventStreamMessage(
    { ':exception-type': exceptionType, ':content-type': 'application/json', ':message-type': 'exception' },
    Buffer.from(JSON.stringify({ message }), 'utf8'),
  );
}

export type TypedHeader =
  | [string, 'true' | 'false']
  | [string, 'byte' | 'short' | 'int' | 'long' | 'timestamp', number]
  | [string, 'bytes', Buffer]
  | [string, 'string', string]
  | [string, 'uuid', string];

/** Independent encoder for all header value types, written from the spec rather than reusing the decoder's code. */
export function encodeTyped(headers: TypedHeader[], payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const h of headers) {
    const name = Buffer.from(h[0], 'utf8');
    const head = Buffer.concat([Buffer.from([name.length]), name]);
    let val: Buffer;
    switch (h[1]) {
      case 'true':
        val = Buffer.from([0]);
        break;
      case 'false':
        val = Buffer.from([1]);
        break;
      case 'byte':
        val = Buffer.alloc(2);
        val[0] = 2;
        val.writeInt8(h[2], 1);
        break;
      case 'short':
        val = Buffer.alloc(3);
        val[0] = 3;
        val.writeInt16BE(h[2], 1);
        break;
      case 'int':
        val = Buffer.alloc(5);
        val[0] = 4;
        val.writeInt32BE(h[2], 1);
        break;
      case 'long':
      case 'timestamp':
        val = Buffer.alloc(9);
        val[0] = h[1] === 'long' ? 5 : 8;
        val.writeBigInt64BE(BigInt(h[2]), 1);
        break;
      case 'bytes': {
        val = Buffer.alloc(3);
        val[0] = 6;
        val.writeUInt16BE(h[2].length, 1);
        val = Buffer.concat([val, h[2]]);
        break;
      }
      case 'string': {
        const s = Buffer.from(h[2], 'utf8');
        val = Buffer.alloc(3);
        val[0] = 7;
        val.writeUInt16BE(s.length, 1);
        val = Buffer.concat([val, s]);
        break;
      }
      case 'uuid':
        val = Buffer.concat([Buffer.from([9]), Buffer.from(h[2].replace(/-/g, ''), 'hex')]);
        break;
    }
    parts.push(head, val);
  }
  const hb = Buffer.concat(parts);
  const total = 12 + hb.length + payload.length + 4;
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(hb.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const body = Buffer.concat([prelude, hb, payload]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, crc]);
}

/** Multilingual text so that splits fall inside multi-byte UTF-8 sequences. */
export const INTL = 'Grüße, señor! 東京は晴れ ☀️ — naïve café 👩‍💻 ok';

/** The documented streaming example with tool use, text made multilingual. */
export const ANTHROPIC_TOOL_STREAM = [
  {
    type: 'message_start',
    message: {
      id: 'msg_014p7gG3wDgGV9EUtLvnow3U',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      stop_sequence: null,
      usage: { input_tokens: 472, output_tokens: 2 },
      content: [],
      stop_reason: null,
    },
  },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'ping' },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Okay, let' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: "'s check the weather for 東京 ☀️ " } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'señor:' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', input: {} } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"location":' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: ' "San Francisc' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: 'o, CA", "unit": "fahrenheit"}' } },
  { type: 'content_block_stop', index: 1 },
  { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_02', name: 'get_time', input: {} } },
  { type: 'content_block_stop', index: 2 },
  { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } },
  { type: 'message_stop' },
];

/** What an adapter must make of ANTHROPIC_TOOL_STREAM, however it arrives (SSE, Bedrock event-stream). */
export const ANTHROPIC_TOOL_STREAM_PARSED = {
  parsed: true,
  errors: [],
  text: [{ role: 'assistant', text: "Okay, let's check the weather for 東京 ☀️ señor:", path: 'content[0].text' }],
  toolCalls: [
    { id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', arguments: '{"location": "San Francisco, CA", "unit": "fahrenheit"}' },
    // A tool without input streams no fragments; its start block's `{}` stands.
    { id: 'toolu_02', name: 'get_time', arguments: '{}' },
  ],
  usage: { inputTokens: 472, outputTokens: 89, totalTokens: 561 },
  finishReason: 'tool_use',
  truncated: false,
};
