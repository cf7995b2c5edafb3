// Entry point of the provider layer: the adapter for each wire format, picked by a destination's `format`.
// Unknown formats get the generic adapter rather than nothing, so traffic is never uninspected.

import { anthropicAdapter } from './anthropic.js';
import { bedrockAdapter } from './bedrock.js';
import { geminiAdapter } from './gemini.js';
import { genericAdapter } from './generic.js';
import { openaiAdapter } from './openai.js';
import type { Adapter, Format } from './types.js';

const ADAPTERS: Readonly<Record<Format, Adapter>> = {
  openai: openaiAdapter,
  anthropic: anthropicAdapter,
  gemini: geminiAdapter,
  bedrock: bedrockAdapter,
  generic: genericAdapter,
};

export function adapterFor(format: Format): Adapter {
  return Object.prototype.hasOwnProperty.call(ADAPTERS, format) ? ADAPTERS[format] : genericAdapter;
}

export { anthropicAdapter, bedrockAdapter, geminiAdapter, genericAdapter, openaiAdapter };
export { encodeEventStreamMessage, EventStreamDecoder } from './eventstream.js';
export { SseParser } from './sse.js';
export type * from './types.js';
