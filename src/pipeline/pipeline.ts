// The named stages of an exchange and the runner that calls them in order.
// Inspection, policy, audit and signals plug in here as stages; front doors never call them directly.

import type { Exchange } from './exchange';

/**
 * A stage subscribes to the points of an exchange it cares about. Request-side hooks may be
 * async (detection runs off the event loop); response-side hooks are synchronous so a
 * stream is never held up by a stage.
 */
export interface Stage {
  readonly name: string;
  /** Destination, method, path and Sluice headers are known; the body is not read yet. */
  requestHead?(x: Exchange): void | Promise<void>;
  /** The whole request body (bounded by limits.max_request_bytes), before anything goes upstream. */
  requestBody?(x: Exchange, body: Buffer): void | Promise<void>;
  /** Upstream status and headers are known; nothing has reached the client yet. */
  responseHead?(x: Exchange): void;
  /** A piece of the decoded response body, in order, as it passes to the client. */
  responseChunk?(x: Exchange, chunk: Buffer): void;
  /**
   * Only for a held response (`x.holdResponse`): the whole body has arrived and the client has seen none of it.
   * May be async; a `responseDecision` of block set here means the client gets Sluice's error instead.
   */
  responseEnd?(x: Exchange): void | Promise<void>;
  /** The exchange is over, whatever the outcome; latencies and adapter results are final. */
  complete?(x: Exchange): void;
}

type Hook = 'requestHead' | 'requestBody' | 'responseHead' | 'responseChunk' | 'responseEnd' | 'complete';
type AsyncHook = 'requestHead' | 'requestBody' | 'responseEnd';

export class Pipeline {
  readonly stages: readonly Stage[];
  // Per-hook lists so an exchange only pays for the stages that subscribed.
  private readonly heads: Stage[];
  private readonly bodies: Stage[];
  private readonly responseHeads: Stage[];
  private readonly chunks: Stage[];
  private readonly ends: Stage[];
  private readonly completes: Stage[];
  private readonly onStageError: (stage: string, hook: Hook, err: unknown, x: Exchange) => void;

  constructor(stages: readonly Stage[], onStageError?: (stage: string, hook: Hook, err: unknown, x: Exchange) => void) {
    this.stages = stages;
    this.heads = stages.filter((s) => s.requestHead);
    this.bodies = stages.filter((s) => s.requestBody);
    this.responseHeads = stages.filter((s) => s.responseHead);
    this.chunks = stages.filter((s) => s.responseChunk);
    this.ends = stages.filter((s) => s.responseEnd);
    this.completes = stages.filter((s) => s.complete);
    this.onStageError = onStageError ?? defaultStageError;
  }

  get wantsResponseChunks(): boolean {
    return this.chunks.length > 0;
  }

  /** Returns a promise only when some stage went async, so the common path allocates none. */
  requestHead(x: Exchange): void | Promise<void> {
    return this.runRequest(this.heads, 'requestHead', x, undefined, 0);
  }

  requestBody(x: Exchange, body: Buffer): void | Promise<void> {
    return this.runRequest(this.bodies, 'requestBody', x, body, 0);
  }

  responseEnd(x: Exchange): void | Promise<void> {
    return this.runRequest(this.ends, 'responseEnd', x, undefined, 0);
  }

  responseHead(x: Exchange): void {
    for (const s of this.responseHeads) {
      try {
        s.responseHead!(x);
      } catch (err) {
        this.onStageError(s.name, 'responseHead', err, x);
      }
    }
  }

  responseChunk(x: Exchange, chunk: Buffer): void {
    for (const s of this.chunks) {
      try {
        s.responseChunk!(x, chunk);
      } catch (err) {
        this.onStageError(s.name, 'responseChunk', err, x);
      }
    }
  }

  complete(x: Exchange): void {
    for (const s of this.completes) {
      try {
        s.complete!(x);
      } catch (err) {
        this.onStageError(s.name, 'complete', err, x);
      }
    }
  }

  private runRequest(list: Stage[], hook: AsyncHook, x: Exchange, body: Buffer | undefined, from: number): void | Promise<void> {
    for (let i = from; i < list.length; i++) {
      const s = list[i]!;
      let r: void | Promise<void>;
      try {
        r = hook === 'requestHead' ? s.requestHead!(x) : hook === 'requestBody' ? s.requestBody!(x, body!) : s.responseEnd!(x);
      } catch (err) {
        this.onStageError(s.name, hook, err, x);
        continue;
      }
      if (r && typeof (r as Promise<void>).then === 'function') {
        return (r as Promise<void>).then(
          () => this.runRequest(list, hook, x, body, i + 1),
          (err: unknown) => {
            this.onStageError(s.name, hook, err, x);
            return this.runRequest(list, hook, x, body, i + 1);
          },
        );
      }
    }
  }
}

/** A failing stage costs its own work, never the exchange or the process; it is recorded. */
function defaultStageError(stage: string, hook: Hook, err: unknown, x: Exchange): void {
  x.fail('SLUICE_INTERNAL', `stage ${stage}.${hook} failed: ${(err as Error)?.message ?? String(err)}`);
}
