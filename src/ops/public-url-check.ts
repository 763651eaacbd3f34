// PUBLIC_URL left at a wrong value (the .env.example placeholder, an old host name) breaks
// pagination silently: every Link and Location header sends vendors to it. The first request
// whose Host differs from PUBLIC_URL's host gets one warning line in the operational log.
// Health checks are not looked at (probes use the pod or container address).

/** The Host as it would appear in PUBLIC_URL (default port dropped, lower case), or null if unreadable. */
function normalHost(publicUrl: URL, host: string): string | null {
  try {
    return new URL(`${publicUrl.protocol}//${host}`).host;
  } catch {
    return null;
  }
}

/** True when a request's Host header names another host than PUBLIC_URL. */
export function hostDiffers(publicUrl: URL, hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const host = normalHost(publicUrl, hostHeader);
  return host !== null && host !== publicUrl.host;
}

/** A per-request check that calls `warn` once, for the first Host that differs. */
export function publicUrlWatch(publicUrl: URL | undefined, warn: (host: string, publicHost: string) => void): (hostHeader: string | undefined) => void {
  if (!publicUrl) return () => {};
  let warned = false;
  let lastSeen: string | undefined;
  return (hostHeader) => {
    // Clients send the same Host on every request: each new one is parsed once.
    if (warned || hostHeader === lastSeen) return;
    lastSeen = hostHeader;
    if (!hostDiffers(publicUrl, hostHeader)) return;
    warned = true;
    warn(hostHeader!.slice(0, 255), publicUrl.host);
  };
}
