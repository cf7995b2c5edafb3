// The built-in first stage: runs the destination's provider adapter over request and response.
// Its results (prompt, response text, tools, usage) are what every later stage inspects.

import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { adapterFor } from '../providers/index';
import type { ParsedRequest } from '../providers/types';
import type { Exchange } from './exchange';
import type { Stage } from './pipeline';

export class AdapterStage implements Stage {
  readonly name = 'adapter';
  private readonly maxDecoded: number;

  constructor(maxDecodedBytes: number) {
    this.maxDecoded = maxDecodedBytes;
  }

  requestBody(x: Exchange, body: Buffer): void {
    const adapter = adapterFor(x.destination.format);
    const encoding = x.requestEncoding;
    let plain = body;
    if (encoding && encoding !== 'identity') {
      const decoded = this.decodeRequest(body, encoding);
      if (typeof decoded === 'string') {
        x.request = unparsed(decoded);
        return;
      }
      plain = decoded;
    }
    x.request = plain.length === 0 ? unparsed('empty body') : adapter.parseRequest(plain, x.info);
  }

  responseHead(x: Exchange): void {
    const adapter = adapterFor(x.destination.format);
    const onText = x.onResponseText;
    x.responseParser = adapter.responseParser(
      x.info,
      x.request ?? unparsed('no request body'),
      { status: x.status, contentType: x.responseContentType },
      onText ? { onText } : undefined,
    );
  }

  responseChunk(x: Exchange, chunk: Buffer): void {
    x.responseParser?.push(chunk);
  }

  /** A held response is parsed as soon as its last byte arrived, so the later stages can judge it. */
  responseEnd(x: Exchange): void {
    this.complete(x);
  }

  complete(x: Exchange): void {
    const p = x.responseParser;
    if (!p) return;
    x.responseParser = null;
    x.response = p.finish();
    if (x.inspectProblems) for (const problem of x.inspectProblems) x.response.errors.push(problem);
  }

  /** Compressed request bodies are rare and small; a bounded synchronous decode keeps this simple. */
  private decodeRequest(body: Buffer, encoding: string): Buffer | string {
    const opts = { maxOutputLength: this.maxDecoded };
    try {
      if (encoding === 'gzip' || encoding === 'x-gzip') return gunzipSync(body, opts);
      if (encoding === 'deflate') return inflateSync(body, opts);
      if (encoding === 'br') return brotliDecompressSync(body, opts);
    } catch (err) {
      return `request content-encoding ${encoding} could not be decoded within ${this.maxDecoded} bytes: ${(err as Error).message}`;
    }
    return `request content-encoding "${encoding}" is not supported for inspection`;
  }
}

function unparsed(error: string): ParsedRequest {
  return { parsed: false, error, operation: 'unknown', stream: false, segments: [], tools: [] };
}
