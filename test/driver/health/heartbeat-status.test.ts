import { describe, expect, it } from 'vitest';
import { statusChanges, type LoadBalancerSnapshot } from '../../../driver/health/heartbeat-status.ts';

const lb = (over: Partial<LoadBalancerSnapshot> = {}): LoadBalancerSnapshot => ({
  enabled: true,
  provisioningStatus: 'ACTIVE',
  operatingStatus: 'OFFLINE',
  listeners: [{ id: 'l1', enabled: true, operatingStatus: 'OFFLINE' }],
  pools: [{ id: 'p1', operatingStatus: 'OFFLINE', members: [{ id: 'm1', operatingStatus: 'OFFLINE' }, { id: 'm2', operatingStatus: 'OFFLINE' }] }],
  ...over,
});
const open = { l1: { status: 'OPEN' } };
const pool = (status: string, members: Record<string, string>) => ({ 'p1:l1': { status, members } });

describe('operating status from a heartbeat', () => {
  it('a healthy amphora makes everything ONLINE', () => {
    const c = statusChanges(lb(), { listeners: open, pools: pool('UP', { m1: 'UP', m2: 'UP' }) });
    expect(c).toEqual({ refreshHealth: true, loadBalancer: 'ONLINE', listeners: { l1: 'ONLINE' }, pools: { p1: 'ONLINE' }, members: { m1: 'ONLINE', m2: 'ONLINE' } });
  });

  it('a DOWN member makes it ERROR, the pool and load balancer DEGRADED', () => {
    const c = statusChanges(lb(), { listeners: open, pools: pool('UP', { m1: 'UP', m2: 'DOWN 2/3' }) });
    expect(c.members).toEqual({ m1: 'ONLINE', m2: 'ERROR' });
    expect(c.pools.p1).toBe('DEGRADED');
    expect(c.loadBalancer).toBe('DEGRADED');
  });

  it('a DOWN pool is ERROR and so is the load balancer', () => {
    const c = statusChanges(lb(), { listeners: open, pools: pool('DOWN', { m1: 'DOWN', m2: 'DOWN' }) });
    expect(c.pools.p1).toBe('ERROR');
    expect(c.loadBalancer).toBe('ERROR');
    expect(c.members).toEqual({ m1: 'ERROR', m2: 'ERROR' });
  });

  it('maps DRAIN, MAINT, no check and keeps RESTARTING', () => {
    const snapshot = lb({ pools: [{ id: 'p1', operatingStatus: 'ONLINE', members: [
      { id: 'a', operatingStatus: 'ONLINE' }, { id: 'b', operatingStatus: 'ONLINE' }, { id: 'c', operatingStatus: 'ONLINE' }, { id: 'd', operatingStatus: 'ONLINE' },
    ] }] });
    const c = statusChanges(snapshot, { listeners: open, pools: pool('UP', { a: 'DRAIN', b: 'MAINT', c: 'no check', d: 'RESTARTING' }) });
    expect(c.members).toEqual({ a: 'DRAINING', b: 'OFFLINE', c: 'NO_MONITOR' });
  });

  it('a member missing from the report goes OFFLINE unless it is NO_MONITOR', () => {
    const snapshot = lb({ pools: [{ id: 'p1', operatingStatus: 'ONLINE', members: [{ id: 'm1', operatingStatus: 'ONLINE' }, { id: 'm2', operatingStatus: 'NO_MONITOR' }] }] });
    const c = statusChanges(snapshot, { listeners: open, pools: pool('UP', {}) });
    expect(c.members).toEqual({ m1: 'OFFLINE' });
  });

  it('a listener missing from the report is ERROR on an ACTIVE load balancer, OFFLINE otherwise or when disabled', () => {
    expect(statusChanges(lb(), { listeners: {}, pools: {} }).listeners).toEqual({ l1: 'ERROR' });
    expect(statusChanges(lb({ provisioningStatus: 'PENDING_UPDATE' }), { listeners: {}, pools: {} }).listeners).toEqual({});
    const disabled = lb({ listeners: [{ id: 'l1', enabled: false, operatingStatus: 'ONLINE' }] });
    expect(statusChanges(disabled, { listeners: {}, pools: {} }).listeners).toEqual({ l1: 'OFFLINE' });
  });

  it('a FULL listener is DEGRADED and degrades the load balancer', () => {
    const c = statusChanges(lb(), { listeners: { l1: { status: 'FULL' } }, pools: pool('UP', { m1: 'UP', m2: 'UP' }) });
    expect(c.listeners.l1).toBe('DEGRADED');
    expect(c.loadBalancer).toBe('DEGRADED');
  });

  it('a pool that is not reported goes OFFLINE', () => {
    const snapshot = lb({ pools: [{ id: 'p1', operatingStatus: 'ONLINE', members: [] }] });
    expect(statusChanges(snapshot, { listeners: open, pools: {} }).pools).toEqual({ p1: 'OFFLINE' });
  });

  it('a disabled load balancer is OFFLINE', () => {
    expect(statusChanges(lb({ enabled: false, operatingStatus: 'ONLINE' }), { listeners: open, pools: {} }).loadBalancer).toBe('OFFLINE');
  });

  it('an empty load balancer becomes ONLINE on its first heartbeat', () => {
    expect(statusChanges(lb({ listeners: [], pools: [] }), { listeners: {}, pools: {} })).toMatchObject({ refreshHealth: true, loadBalancer: 'ONLINE' });
  });

  it('writes only what changed', () => {
    const steady = lb({ operatingStatus: 'ONLINE', listeners: [{ id: 'l1', enabled: true, operatingStatus: 'ONLINE' }], pools: [{ id: 'p1', operatingStatus: 'ONLINE', members: [{ id: 'm1', operatingStatus: 'ONLINE' }] }] });
    expect(statusChanges(steady, { listeners: open, pools: { p1: { status: 'UP', members: { m1: 'UP' } } } })).toEqual({ refreshHealth: true, listeners: {}, pools: {}, members: {} });
  });

  it('refreshes the health timestamp only when every enabled listener is reported', () => {
    const two = lb({ listeners: [{ id: 'l1', enabled: true, operatingStatus: 'ONLINE' }, { id: 'l2', enabled: true, operatingStatus: 'ONLINE' }] });
    expect(statusChanges(two, { listeners: open, pools: {} }).refreshHealth).toBe(false);
    expect(statusChanges(two, { listeners: { ...open, l2: { status: 'OPEN' } }, pools: {} }).refreshHealth).toBe(true);
    expect(statusChanges({ ...two, provisioningStatus: 'PENDING_UPDATE' }, { listeners: open, pools: {} }).refreshHealth).toBe(true);
    expect(statusChanges({ ...two, enabled: false }, { listeners: open, pools: {} }).refreshHealth).toBe(true);
  });
});
