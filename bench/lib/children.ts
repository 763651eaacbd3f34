// Forking the bench's helper processes and talking to them over IPC, with time limits on
// everything so a stuck child fails the bench instead of hanging it.
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type ChildCommand = 'mem-start' | 'mem-stop' | 'close';

export interface ChildRequest {
  id: number;
  cmd: ChildCommand;
}

export interface ChildReply {
  id: number;
  ready?: true;
  url?: string;
  /** Milliseconds from process start of main() to listening (includes policy load). */
  startMs?: number;
  rss: number;
  /** Highest RSS sampled (every 20 ms) since mem-start, in bytes. */
  peakRss: number;
  /** Linux VmHWM: the process's lifetime peak RSS, in bytes (null elsewhere). */
  vmHwm: number | null;
  /** process.memoryUsage() when the sampled RSS peaked (mem-stop, close). */
  atPeak?: NodeJS.MemoryUsage;
  /** V8 heap in use right after a full GC (ready, mem-start): what the process retains. */
  heapAfterGc?: number;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  url: string;
  ready: ChildReply;
  call: (cmd: ChildCommand, timeoutMs?: number) => Promise<ChildReply>;
  /** Asks the child to close (flushes the audit log) and waits for it to exit. */
  stop: () => Promise<ChildReply | undefined>;
  kill: () => void;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (on errors and on exit). */
export function killAll(): void {
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  live.clear();
}

export async function startChild(
  name: string,
  script: URL,
  env: Record<string, string>,
  opts: { execArgv?: string[]; readyTimeoutMs?: number; cpus?: string; execPath?: string } = {},
): Promise<Child> {
  const proc = fork(script, [], {
    env: { ...process.env, ...env },
    execArgv: opts.execArgv ?? [],
    // A wrapper (valgrind, for bench/instructions.ts) that starts Node itself.
    ...(opts.execPath ? { execPath: opts.execPath } : {}),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(proc);
  if (opts.cpus !== undefined && proc.pid !== undefined && !pinToCpus(proc.pid, opts.cpus)) {
    proc.kill('SIGKILL');
    throw new Error(`${name}: could not pin to CPU ${opts.cpus} (taskset failed; set BENCH_PIN=0)`);
  }
  proc.once('exit', () => live.delete(proc));

  const pending = new Map<number, { resolve: (r: ChildReply) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: Error | undefined;
  proc.on('message', (raw: unknown) => {
    const msg = raw as ChildReply;
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      p.resolve(msg);
    }
  });
  proc.once('exit', (code, signal) => {
    exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
    for (const p of pending.values()) p.reject(exited);
    pending.clear();
  });

  const wait = (id: number, what: string, timeoutMs: number): Promise<ChildReply> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(exited);
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${name}: no answer to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });

  const ready = await wait(0, 'ready', opts.readyTimeoutMs ?? 60_000).catch((err: Error) => {
    proc.kill('SIGKILL');
    throw err;
  });
  if (!ready.url) throw new Error(`${name}: ready without a URL`);

  const call = (cmd: ChildCommand, timeoutMs = 10_000): Promise<ChildReply> => {
    const id = nextId++;
    const answer = wait(id, cmd, timeoutMs);
    proc.send({ id, cmd } satisfies ChildRequest);
    return answer;
  };

  return {
    name,
    proc,
    url: ready.url,
    ready,
    call,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return undefined;
      const exit = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      const reply = await call('close', 30_000);
      await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      return reply;
    },
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/** VmHWM (peak RSS) of a running process from /proc, in bytes; null if unavailable. */
export function procVmHwm(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Restricts a process and all its threads (and the threads it starts later) to `cpus`
 *  (a taskset list such as "1" or "0,2"). Linux only; false if taskset is missing or fails. */
export function pinToCpus(pid: number, cpus: string): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

/** Whether CPU pinning can work here (Linux with taskset on PATH). */
export function canPin(): boolean {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

let clockTicks: number | undefined;

/** CPU time (user + system) a process has used so far, in seconds, from /proc; null elsewhere. */
export function procCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).stdout.trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}
