// A client's operational settings in the policy, read when the policy is loaded (and again on
// every reload):
//   upstream_token_file: /run/secrets/acme-gitlab-token   (absolute path)
//   upstream_token_env: ACME_GITLAB_TOKEN
//     the client's own GitLab token (its own service account), used instead of GITLAB_TOKEN;
//   rate_limit: 600/minute   (or N/second, N/hour)
//   burst: 20
//     a token bucket per client per replica.
// Problems are reported at the key's location like every other policy problem; a token's
// value never appears in a message.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { BlockList } from 'node:net';
import { parseRateLimit, type RateLimitSpec } from '../limits/client-limits.ts';
import { cidrList } from '../config/cidr.ts';

export interface ClientOpsDoc {
  upstream_token_file?: string | undefined;
  upstream_token_env?: string | undefined;
  rate_limit?: string | undefined;
  burst?: number | undefined;
  source_ips?: string[] | undefined;
}

export interface ClientOpsSettings {
  /** The client's own GitLab token. A function, so that serializing a client never shows it. */
  upstreamToken?: () => string;
  /** Where it was read from (watched for changes), when it came from a file. */
  upstreamTokenFile?: string;
  rateLimit?: RateLimitSpec;
  /** source_ips: the addresses this client's tokens are accepted from (else 401 source-ip-not-allowed). */
  sourceIps?: BlockList;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function clientOpsSettings(
  doc: ClientOpsDoc,
  problem: (key: keyof ClientOpsDoc, message: string) => void,
  env: Record<string, string | undefined> = process.env,
): ClientOpsSettings {
  const out: ClientOpsSettings = {};
  const file = doc.upstream_token_file;
  const envName = doc.upstream_token_env;
  if (file !== undefined && envName !== undefined) {
    problem('upstream_token_env', 'set upstream_token_file or upstream_token_env, not both');
  } else if (file !== undefined) {
    if (!isAbsolute(file)) {
      problem('upstream_token_file', 'upstream_token_file must be an absolute path');
    } else {
      let value: string | undefined;
      try {
        value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problem('upstream_token_file', `upstream_token_file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (value === '') problem('upstream_token_file', `upstream_token_file: ${file} is empty`);
      else if (value !== undefined) {
        const token = value;
        out.upstreamToken = () => token;
        out.upstreamTokenFile = file;
      }
    }
  } else if (envName !== undefined) {
    const value = ENV_NAME.test(envName) ? env[envName] : undefined;
    if (!ENV_NAME.test(envName)) problem('upstream_token_env', 'upstream_token_env must be an environment variable name');
    else if (!value) problem('upstream_token_env', `upstream_token_env: environment variable ${envName} is not set`);
    else out.upstreamToken = () => value;
  }
  if (doc.rate_limit !== undefined) {
    const spec = parseRateLimit(doc.rate_limit, doc.burst);
    if (spec) out.rateLimit = spec;
    else problem('rate_limit', 'rate_limit must be "N/second", "N/minute" or "N/hour", e.g. "600/minute"');
  } else if (doc.burst !== undefined) {
    problem('burst', 'burst needs a rate_limit');
  }
  if (doc.source_ips !== undefined) {
    try {
      out.sourceIps = cidrList(doc.source_ips);
    } catch (err) {
      problem('source_ips', `source_ips: ${(err as Error).message}`);
    }
  }
  return out;
}
