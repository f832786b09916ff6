// GET /loadbalancers/{id}/status: load balancer -> listeners -> pools (default pool plus the
// redirect pools of enabled policies that have rules) -> health monitor and members.
import type { Database, Row } from '../../common/db/database.ts';
import { loadTree } from '../../driver/controller/completion.ts';

const named = (r: Row) => ({ id: r.id, name: r.name ?? '', operating_status: r.operating_status, provisioning_status: r.provisioning_status });

export async function statusTree(db: Database, lbRow: Row) {
  const tree = (await loadTree(db, lbRow.id))!;
  const sortByCreated = (a: Row, b: Row) => String(a.created_at).localeCompare(String(b.created_at)) || a.id.localeCompare(b.id);
  const rulesByPolicy = new Set(tree.rules.map((r) => r.l7policy_id));
  const poolView = (pool: Row) => {
    const monitor = tree.monitors.find((h) => h.pool_id === pool.id);
    return {
      ...named(pool),
      ...(monitor ? { health_monitor: { id: monitor.id, name: monitor.name ?? '', type: monitor.type, provisioning_status: monitor.provisioning_status, operating_status: monitor.operating_status } } : {}),
      members: tree.members
        .filter((m) => m.pool_id === pool.id)
        .sort(sortByCreated)
        .map((m) => ({ ...named(m), address: m.address, protocol_port: m.protocol_port })),
    };
  };
  return {
    ...named(lbRow),
    listeners: tree.listeners.sort(sortByCreated).map((listener) => {
      const poolIds: string[] = [];
      if (listener.default_pool_id) poolIds.push(listener.default_pool_id);
      for (const p of tree.policies.filter((p) => p.listener_id === listener.id).sort((a, b) => a.position - b.position)) {
        if (p.admin_state_up && p.redirect_pool_id && rulesByPolicy.has(p.id) && !poolIds.includes(p.redirect_pool_id)) poolIds.push(p.redirect_pool_id);
      }
      return {
        ...named(listener),
        pools: poolIds.map((id) => tree.pools.find((p) => p.id === id)).filter((p): p is Row => !!p).map(poolView),
      };
    }),
  };
}
