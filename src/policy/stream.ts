// Inspection of a response while it streams: text is scanned in windows as it is reassembled (each window
// reaching back OVERLAP characters, so a match split across events or chunks is found) and every new finding
// is handed to policy, which may cut the stream. One scan runs at a time per response; text keeps arriving.

import type { SegmentFinding } from '../detect/pool';
import type { ExchangeFinding } from '../pipeline/exchange';

/** Scan once this much new text has arrived, or once new text has waited MAX_WAIT_MS: a leak stops early. */
const WINDOW_CHARS = 512;
const MAX_WAIT_MS = 50;
/** How far a window reaches back into text already scanned: the longest match found across a window edge. */
const OVERLAP_CHARS = 512;

export type Scanner = (texts: readonly string[]) => Promise<SegmentFinding[]>;

interface Segment {
  role: string;
  path: string;
  text: string;
  scanned: number;
}

export class StreamScan {
  private readonly scan: Scanner;
  private readonly onFindings: (found: ExchangeFinding[]) => void;
  private readonly segments = new Map<string, Segment>();
  private readonly seen = new Set<string>();
  private pending = 0;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(scan: Scanner, onFindings: (found: ExchangeFinding[]) => void) {
    this.scan = scan;
    this.onFindings = onFindings;
  }

  /** ResponseBuilder's onText: one delta of one segment. */
  readonly text = (path: string, role: string, delta: string): void => {
    if (this.stopped) return;
    const key = `${role}\u0000${path}`;
    let seg = this.segments.get(key);
    if (!seg) {
      seg = { role, path, text: '', scanned: 0 };
      this.segments.set(key, seg);
    }
    seg.text += delta;
    this.pending += delta.length;
    if (this.pending >= WINDOW_CHARS) this.run();
    else this.timer ??= setTimeout(this.run, MAX_WAIT_MS).unref();
  };

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly run = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running || this.stopped || this.pending === 0) return;
    this.running = true;
    this.pending = 0;
    const windows: Array<{ seg: Segment; from: number }> = [];
    const texts: string[] = [];
    for (const seg of this.segments.values()) {
      if (seg.scanned === seg.text.length) continue;
      const from = Math.max(0, seg.scanned - OVERLAP_CHARS);
      windows.push({ seg, from });
      texts.push(seg.text.slice(from));
      seg.scanned = seg.text.length;
    }
    this.scan(texts).then(
      (found) => {
        const fresh: ExchangeFinding[] = [];
        for (const f of found) {
          const w = windows[f.segment]!;
          const start = w.from + f.start;
          const key = `${w.seg.path}\u0000${start}\u0000${f.rule}`;
          if (this.seen.has(key)) continue;
          this.seen.add(key);
          fresh.push({ rule: f.rule, category: f.category, severity: f.severity, confidence: f.confidence, role: w.seg.role, path: w.seg.path, start, end: w.from + f.end, masked: f.masked });
        }
        this.running = false;
        if (fresh.length && !this.stopped) this.onFindings(fresh);
        if (this.pending > 0) this.run();
      },
      () => {
        // The after-the-response scan still runs and records any failure; a stream is not cut on one.
        this.running = false;
        if (this.pending > 0) this.run();
      },
    );
  };
}
