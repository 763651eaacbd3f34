// The memory allocator the image runs the proxy with (the Dockerfile's LD_PRELOAD and
// MALLOC_CONF), so that the abuse soak measures resident memory as the image would have it.
// Used when the library is installed here (Debian: apt-get install libjemalloc2); otherwise
// the soak runs glibc's malloc and says so. An LD_PRELOAD or MALLOC_CONF already set in the
// soak's environment wins.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Allocator {
  env: Record<string, string>;
  /** What the run used, for its header line. */
  description: string;
}

/** `NAME=value` pairs of the Dockerfile's ENV instructions (continuation lines joined). */
function dockerfileEnv(dockerfile: string): Map<string, string> {
  const env = new Map<string, string>();
  const joined = dockerfile.replace(/\\\r?\n/g, ' ');
  for (const line of joined.split(/\r?\n/)) {
    const m = /^\s*ENV\s+(.*)$/.exec(line);
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  return env;
}

function installed(library: string): boolean {
  const r = spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && r.stdout.split('\n').some((l) => l.trim().startsWith(`${library} `));
}

export function imageAllocator(dockerfilePath: string, env: NodeJS.ProcessEnv = process.env): Allocator {
  if (env.LD_PRELOAD !== undefined || env.MALLOC_CONF !== undefined) {
    return { env: {}, description: `as set here (LD_PRELOAD=${env.LD_PRELOAD ?? ''} MALLOC_CONF=${env.MALLOC_CONF ?? ''})` };
  }
  const image = dockerfileEnv(readFileSync(dockerfilePath, 'utf8'));
  const preload = image.get('LD_PRELOAD');
  if (!preload) return { env: {}, description: "glibc's malloc (the image sets no LD_PRELOAD)" };
  if (!installed(preload)) return { env: {}, description: `glibc's malloc: ${preload}, which the image preloads, is not installed here (Debian: libjemalloc2), so memory is not measured as in the image` };
  const out: Record<string, string> = { LD_PRELOAD: preload };
  const conf = image.get('MALLOC_CONF');
  if (conf) out.MALLOC_CONF = conf;
  return { env: out, description: `${preload}${conf ? ` with MALLOC_CONF=${conf}` : ''}, as the image` };
}
