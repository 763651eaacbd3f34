// `gitlab-scope-proxy reload [--reopen-audit] [--admin URL]`: asks the running proxy, through its
// admin listener, to reload its policy and secrets (POST /-/reload, as SIGHUP does) or only to
// reopen its audit log (POST /-/reopen, as SIGUSR1 does). No pid to find, and it works where
// the proxy runs under npm or in a container: the admin port is enough.

/** The admin listener's URL from ADMIN_HOST / ADMIN_PORT: a wildcard address is reached on loopback. */
export function adminUrlFrom(env: Record<string, string | undefined>): string {
  const host = env.ADMIN_HOST || '0.0.0.0';
  const address = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${address.includes(':') ? `[${address}]` : address}:${env.ADMIN_PORT || '9090'}`;
}

export async function reloadCommand(opts: { adminUrl: string; reopenOnly: boolean; out: (line: string) => void; err: (line: string) => void }): Promise<number> {
  const url = new URL(opts.reopenOnly ? '/-/reopen' : '/-/reload', opts.adminUrl);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const code = ((err as { cause?: { code?: string } }).cause?.code) ?? (err as Error).name;
    opts.err(`cannot reach the proxy's admin listener at ${url.origin} (${code}): is it running? Set ADMIN_HOST/ADMIN_PORT or --admin`);
    return 2;
  }
  const body = (await res.json().catch(() => ({}))) as { status?: string; changed?: string[]; problems?: string[] };
  if (res.ok && body.status === 'reopened') {
    opts.out('audit log reopened');
    return 0;
  }
  if (res.ok && body.status === 'reloaded') {
    opts.out(`reloaded${body.changed && body.changed.length > 0 ? `: ${body.changed.join(', ')} changed` : ': nothing changed'}`);
    return 0;
  }
  if (body.status === 'refused') {
    opts.err('reload refused; the previous policy and secrets stay in force:');
    for (const p of body.problems ?? []) opts.err(p);
    return 1;
  }
  opts.err(`unexpected answer from ${url.href}: ${res.status}`);
  return 1;
}
