// A detection worker thread: builds its detector once from what the pool hands over, then scans segments.
// The handler never throws: failures come back as values, so the pool can tell a scan error from a dead thread.

import { workerData } from 'piscina';
import { scanSegments, type InspectTask, type WorkerInit, type WorkerReply } from './pool';
import { Detector } from './scan';

function init(data: WorkerInit): (task: InspectTask) => WorkerReply {
  const detector = Detector.fromRuleSet(data.ruleSet, {
    prefer: data.engine,
    ...(data.digestKey ? { digestKey: Buffer.from(data.digestKey) } : {}),
    ...(data.prebuilt ? { prebuilt: data.prebuilt } : {}),
  });
  return (task) => {
    try {
      return { ok: true, findings: scanSegments(detector, task.segments, task.values) };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { ok: false, code: e.code ?? 'SLUICE_ENGINE_ERROR', message: e.message ?? String(err) };
    }
  };
}

export = init(workerData as WorkerInit);
