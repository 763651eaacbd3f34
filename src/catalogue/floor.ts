// The hard floor: what no rule, preset, report mode or broad glob can forward. A request that
// could reach a credential route (tokens, keys, CI/CD variables... src/catalogue/classes.ts)
// is refused; an admin route only passes for a client with `admin: true`. Pure: the request's
// raw segments and the client's opt-in in, a refusal reason (or undefined) out.
import { getCatalogue, CLASS_BITS, type Route } from './catalogue.ts';

export interface FloorClient {
  /** `admin: true` in the client's policy: admin routes may be granted by its rules. */
  admin?: boolean;
}

/** The refusal when `method` on `segments` may reach a floor route, else undefined.
 *  Every route the request could reach counts, not only the one GitLab tries first. */
export function floorRefusal(method: string, segments: readonly string[], client: FloorClient): { reason: 'credential-route' | 'admin-route'; detail: string } | undefined {
  const mask = getCatalogue().classesOf(method, segments);
  if (mask & CLASS_BITS.credential) {
    const route = getCatalogue().routeWith(method, segments, CLASS_BITS.credential)!;
    return { reason: 'credential-route', detail: `${route.method} ${route.template} creates or reveals a credential (${route.reason})` };
  }
  if (mask & CLASS_BITS.admin && !client.admin) {
    const route = getCatalogue().routeWith(method, segments, CLASS_BITS.admin)!;
    return { reason: 'admin-route', detail: `${route.method} ${route.template} is instance administration (${route.reason}); the client needs admin: true` };
  }
  return undefined;
}

/** "GET /api/v4/projects/:id (Projects)": the GitLab route a request reaches, for the audit
 *  line and `explain`; the ".json"-less reading when only that one names a route. */
export function routeName(method: string, segments: readonly string[], formatAlias?: readonly string[]): string | null {
  const route = getCatalogue().routeOf(method, segments) ?? (formatAlias ? getCatalogue().routeOf(method, formatAlias) : undefined);
  return route ? describeRoute(route) : null;
}

export const describeRoute = (route: Route): string => `${route.method} ${route.template} (${route.tag})`;
