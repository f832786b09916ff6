import { AmphoraConfigSchema } from './schema.ts';
import { checkSemantics, type ConfigIssue } from './semantics.ts';
import type { AmphoraConfig } from './types.ts';

export class AmphoraConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(`invalid amphora config: ${issues.map(formatIssue).join('; ')}`);
    this.name = 'AmphoraConfigError';
    this.issues = issues;
  }
}

export type ParseResult = { ok: true; config: AmphoraConfig } | { ok: false; error: AmphoraConfigError };

function formatIssue(issue: ConfigIssue): string {
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

/** Validates a whole document: schema first, then the cross-object rules. Never partially accepts. */
export function safeParseAmphoraConfig(input: unknown): ParseResult {
  const parsed = AmphoraConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message }));
    return { ok: false, error: new AmphoraConfigError(issues) };
  }
  const issues = checkSemantics(parsed.data);
  if (issues.length > 0) return { ok: false, error: new AmphoraConfigError(issues) };
  return { ok: true, config: parsed.data };
}

export function parseAmphoraConfig(input: unknown): AmphoraConfig {
  const result = safeParseAmphoraConfig(input);
  if (!result.ok) throw result.error;
  return result.config;
}
