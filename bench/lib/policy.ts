// Policies for the bench: the small one (one client) and the large one (1,000 clients with
// 20 rules each), both written as the YAML an operator would write.

export const BENCH_CLIENT = 'bench-vendor';
export const BENCH_PATH = '/api/v4/projects/42';
export const ARCHIVE_PATH = '/api/v4/projects/42/repository/archive';

export function smallPolicy(): string {
  return [
    'clients:',
    `  ${BENCH_CLIENT}:`,
    '    description: the bench load generator',
    '    allow:',
    '      - "GET /api/v4/projects/:id"',
    '      - "GET /api/v4/projects/:id/repository/archive"',
    '',
  ].join('\n');
}

/** Rule shapes a real integration asks for; each client gets 19 of them plus the bench rule. */
const TEMPLATES = [
  'GET /api/v4/projects/:id/merge_requests',
  'GET /api/v4/projects/:id/merge_requests/:merge_request_iid',
  'GET,POST /api/v4/projects/:id/merge_requests/:merge_request_iid/notes',
  'GET /api/v4/projects/:id/merge_requests/:merge_request_iid/changes',
  'GET /api/v4/projects/:id/merge_requests/:merge_request_iid/diffs',
  'GET,POST /api/v4/projects/:id/merge_requests/:merge_request_iid/discussions',
  'PUT /api/v4/projects/:id/merge_requests/:merge_request_iid/discussions/:discussion_id',
  'GET /api/v4/projects/:id/issues',
  'GET,PUT /api/v4/projects/:id/issues/:issue_iid',
  'GET,POST /api/v4/projects/:id/issues/:issue_iid/notes',
  'GET /api/v4/projects/:id/repository/commits',
  'GET /api/v4/projects/:id/repository/commits/:sha',
  'GET /api/v4/projects/:id/repository/commits/:sha/diff',
  'POST /api/v4/projects/:id/statuses/:sha',
  'GET /api/v4/projects/:id/repository/tree',
  'GET /api/v4/projects/:id/repository/files/:file_path/raw',
  'GET /api/v4/projects/:id/repository/branches',
  'GET /api/v4/projects/:id/pipelines',
  'GET /api/v4/projects/:id/pipelines/:pipeline_id/jobs',
  'GET /api/v4/projects/:id/jobs/:job_id/trace',
  'GET /api/v4/projects/:id/labels',
  'GET /api/v4/projects/:id/members/all',
  'GET /api/v4/groups/:id/projects',
  'GET /api/v4/groups/:id/epics/*',
  'GET /api/v4/projects/:id/packages/**',
];

export const LARGE_CLIENTS = 1000;
export const LARGE_RULES_PER_CLIENT = 20;

export const largeClientName = (i: number): string => `vendor-${String(i).padStart(4, '0')}`;

/**
 * `clients` clients in `files` YAML files, 20 rules each. Every client gets a different
 * selection of 19 template rules; about a third of them are pinned to a literal project id
 * (as operators narrow them), and the last rule is "GET /api/v4/projects/:id" so the bench
 * client (`largeClientName(benchIndex)`) can make the bench request.
 */
export function largePolicy(clients = LARGE_CLIENTS, files = 1): { display: string; text: string }[] {
  const perFile = Math.ceil(clients / files);
  const out: { display: string; text: string }[] = [];
  for (let f = 0; f < files; f++) {
    const lines = ['clients:'];
    for (let i = f * perFile; i < Math.min(clients, (f + 1) * perFile); i++) {
      lines.push(`  ${largeClientName(i)}:`, `    description: generated vendor ${i}`, '    allow:');
      for (let r = 0; r < LARGE_RULES_PER_CLIENT - 1; r++) {
        let rule = TEMPLATES[(i + r) % TEMPLATES.length]!;
        if ((i + r) % 3 === 0) rule = rule.replace('/projects/:id/', `/projects/${1000 + i}/`);
        lines.push(`      - "${rule}"`);
      }
      lines.push('      - "GET /api/v4/projects/:id"');
    }
    out.push({ display: `policies/large-${String(f).padStart(2, '0')}.yaml`, text: lines.join('\n') + '\n' });
  }
  return out;
}
