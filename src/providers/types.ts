// The adapter interface every provider wire format implements.
// Adapters turn request and response bodies into the observables (prompt, response, tools, usage).

/** Wire formats Sluice understands; a destination names the one its API speaks. */
export type Format = 'openai' | 'anthropic' | 'gemini' | 'bedrock' | 'generic';

/** One piece of text that left or entered the company, and where it sits in the JSON. */
export interface TextSegment {
  /** `system`, `user`, `assistant`, `tool`, `developer`… as the provider names it. */
  role: string;
  text: string;
  /** JSON path in the request body (`messages[2].content[0].text`), or in the reassembled
   *  response (`choices[0].message.content`), so later stages can redact in place. */
  path: string;
}

/** A tool or function call the model asked for. */
export interface ToolInvocation {
  id?: string;
  name: string;
  /** Arguments as the provider sent them (a JSON text for most providers). */
  arguments: string;
}

export interface Usage {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
}

export interface ProviderError {
  /** Provider's own error type or code (`invalid_request_error`, `ThrottlingException`…). */
  type?: string;
  message: string;
}

/** What the front door knows about the request when the adapter runs. */
export interface RequestInfo {
  method: string;
  /** Upstream path, gateway prefix already removed: `/v1/chat/completions`. */
  path: string;
  /** Raw query string without `?`. */
  query: string;
  contentType: string;
}

export interface ParsedRequest {
  /** False when the body was not what the format expects (not JSON, wrong shape). */
  parsed: boolean;
  /** Why parsing failed, for the exchange record. */
  error?: string;
  model?: string;
  /** `chat.completions`, `responses`, `embeddings`, `completions`, `messages`,
   *  `generateContent`, `streamGenerateContent`, `converse`, `converseStream`, `invoke`,
   *  `invokeStream`, or `unknown`. */
  operation: string;
  stream: boolean;
  segments: TextSegment[];
  /** Names of the tools/functions the request declares. */
  tools: string[];
}

export interface ParsedResponse {
  /** False when nothing of the body could be understood. */
  parsed: boolean;
  /** Parse problems met on the way (bad JSON, broken SSE, CRC mismatch, truncated frame). */
  errors: string[];
  text: TextSegment[];
  toolCalls: ToolInvocation[];
  usage?: Usage;
  finishReason?: string;
  providerError?: ProviderError;
  /** True when more text arrived than the parser keeps (see ResponseParserOptions). */
  truncated: boolean;
}

export interface ResponseHead {
  status: number;
  /** Lower-cased content-type, '' when absent. */
  contentType: string;
}

export interface ResponseParserOptions {
  /** Upper bound on reassembled text kept in memory, in UTF-16 code units (default 1 MiB). */
  maxTextChars?: number;
  /** Called with each piece of response text or streamed tool-call arguments as it is reassembled (one delta at a time). */
  onText?(path: string, role: string, text: string): void;
}

/** Incremental response parser: push decoded body bytes as they arrive, then finish. */
export interface ResponseParser {
  /** Chunks may split anywhere: inside a UTF-8 character, an SSE line, a binary frame. Never throws. */
  push(chunk: Buffer): void;
  /** Called once at end of body (also after an aborted stream). Never throws. */
  finish(): ParsedResponse;
}

export interface ErrorBody {
  contentType: string;
  body: string;
}

export interface Adapter {
  readonly format: Format;
  /** Never throws: a body it cannot read comes back with `parsed: false`. */
  parseRequest(body: Buffer, req: RequestInfo): ParsedRequest;
  responseParser(req: RequestInfo, parsedRequest: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser;
  /** The error body the provider's SDKs understand, used when Sluice itself answers
   *  (block, upstream failure, limits). `code` is a Sluice error code. */
  errorBody(status: number, code: string, message: string): ErrorBody;
  /**
   * An error event in the response's own stream framing (SSE or AWS event-stream), which the SDKs raise as an
   * error: how Sluice ends a stream it has to cut. Null when the content type is not a stream this format knows.
   */
  streamErrorEvent(contentType: string, code: string, message: string): Buffer | null;
}
