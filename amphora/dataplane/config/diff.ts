import type { AmphoraConfig } from '../../../common/amphora-config/index.ts';

export interface ObjectChanges {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

/** What a new config changes relative to the running one, by object id (for logs and the apply result). */
export interface ConfigDiff {
  fromVersion: number | null;
  toVersion: number;
  listeners: ObjectChanges;
  pools: ObjectChanges;
  /** Whether VIPs or global limits changed. */
  globalChanged: boolean;
}

export function diffConfigs(before: AmphoraConfig | null, after: AmphoraConfig): ConfigDiff {
  return {
    fromVersion: before?.configVersion ?? null,
    toVersion: after.configVersion,
    listeners: diffById(before?.listeners ?? [], after.listeners),
    pools: diffById(before?.pools ?? [], after.pools),
    globalChanged:
      before === null ||
      JSON.stringify(before.vips) !== JSON.stringify(after.vips) ||
      JSON.stringify(before.limits) !== JSON.stringify(after.limits),
  };
}

function diffById<T extends { id: string }>(before: readonly T[], after: readonly T[]): ObjectChanges {
  const old = new Map(before.map((o) => [o.id, JSON.stringify(o)]));
  const changes: ObjectChanges = { added: [], removed: [], changed: [], unchanged: [] };
  const seen = new Set<string>();
  for (const o of after) {
    seen.add(o.id);
    const previous = old.get(o.id);
    if (previous === undefined) changes.added.push(o.id);
    else if (previous === JSON.stringify(o)) changes.unchanged.push(o.id);
    else changes.changed.push(o.id);
  }
  for (const id of old.keys()) if (!seen.has(id)) changes.removed.push(id);
  return changes;
}

/** True when nothing an amphora serves would change (only configVersion differs). */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  const quiet = (c: ObjectChanges) => c.added.length + c.removed.length + c.changed.length === 0;
  return quiet(diff.listeners) && quiet(diff.pools) && !diff.globalChanged;
}
