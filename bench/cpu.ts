// CPU accounting for the benchmarks, from /proc: what a process used, and how busy the whole machine was
// (what neither the bench nor its children used is foreign load, reported so a noisy round can be told apart).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used, from /proc; null where /proc is not available. */
export function cpuSeconds(pid: number | undefined): number | null {
  return pid ? statCpuSeconds(`/proc/${pid}/stat`) : null;
}

/**
 * CPU seconds this process's main thread has used (its task id is the pid): the event loop's share, which work moved
 * to worker threads no longer counts in. Null where /proc is not available.
 */
export function mainThreadCpuSeconds(): number | null {
  return statCpuSeconds(`/proc/${process.pid}/task/${process.pid}/stat`);
}

function statCpuSeconds(path: string): number | null {
  try {
    const stat = readFileSync(path, 'utf8');
    // Fields after the parenthesised command name start at field 3 (state); utime and stime are 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Machine-wide busy CPU seconds; steal counts, since it is time the hypervisor gave to someone else. */
export function machineBusySeconds(): number | null {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = v;
    return (user + nice + system + irq + softirq + steal) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU seconds of a set of processes (the bench and its children); null when one cannot be read. */
export function sumCpuSeconds(pids: readonly number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    const c = cpuSeconds(pid);
    if (c === null) return null;
    sum += c;
  }
  return sum;
}
