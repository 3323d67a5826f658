// What a process costs, read from /proc (Linux): CPU time with nanosecond precision (the
// sum of every thread's schedstat, so V8's and libuv's threads count too), and RSS.
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time used so far by all threads of `pid`, in nanoseconds. */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return total;
}

function statusField(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

/** The most resident memory the process ever had (VmHWM), in MiB. */
export function hwmMiB(pid: number): number {
  return statusField(pid, 'VmHWM') / 1024;
}

/** Resident memory now, in MiB. */
export function rssMiB(pid: number): number {
  return statusField(pid, 'VmRSS') / 1024;
}
