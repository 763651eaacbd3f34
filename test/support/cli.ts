// Runs a CLI command in-process through `main(argv, io)`: the same code path as the binary,
// with its output collected and its exit code returned, without starting Node per command.
// Only `serve` (signals, process exit) needs a real process; see test/cli.test.ts.
import { Readable } from 'node:stream';
import { main } from '../../src/cli.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The whole environment the command sees (nothing is inherited from the test process). */
  env?: Record<string, string>;
  /** Standard input, for `learn` and `audit` reading "-". */
  input?: string | Buffer;
  cwd?: string;
}

export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { ...opts.env },
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    stdin: Readable.from(opts.input === undefined ? [] : [Buffer.from(opts.input)]),
  });
  return { code, stdout, stderr };
}
