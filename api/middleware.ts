// Small Koa middleware, each with one job.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Context, Next } from 'koa';
import type { Logger } from '../common/logging.ts';
import { ApiError, errors } from './errors.ts';

/**
 * `Server-Timing: app;dur=<ms>`: the time this process spent on the request, from the first
 * middleware until the response is ready to be written. bench/api reports it beside the client's
 * figure, which also holds the network, the client and, on a shared machine, waits for a CPU.
 */
export function serverTiming() {
  return async (ctx: Context, next: Next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      ctx.set('Server-Timing', `app;dur=${(performance.now() - start).toFixed(2)}`);
    }
  };
}

export function requestId() {
  return async (ctx: Context, next: Next) => {
    const id = `req-${randomUUID()}`;
    ctx.state.requestId = id;
    ctx.set('x-openstack-request-id', id);
    await next();
  };
}

/** Renders errors as Octavia's fault body; unexpected errors are logged and become a 500. */
export function faults(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw errors.notFoundPath();
      if (ctx.status === 405 && (ctx.body === undefined || typeof ctx.body === 'string')) throw errors.methodNotAllowed();
    } catch (err) {
      const e = err as { httpStatus?: number; faultstring?: string; status?: number; expose?: boolean; message?: string };
      if (typeof e.httpStatus === 'number' && typeof e.faultstring === 'string') {
        ctx.status = e.httpStatus;
        ctx.body = { faultcode: e.httpStatus < 500 ? 'Client' : 'Server', faultstring: e.faultstring, debuginfo: null };
        if (e.httpStatus >= 500 && e.httpStatus !== 501) log.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'request failed');
        return;
      }
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
        ctx.status = e.status;
        ctx.body = { faultcode: 'Client', faultstring: e.message ?? 'Bad request', debuginfo: null };
        return;
      }
      log.error({ err, requestId: ctx.state.requestId, method: ctx.method, path: ctx.path }, 'unexpected error');
      ctx.status = 500;
      ctx.body = { faultcode: 'Server', faultstring: 'An unexpected error occurred. Please see the API logs.', debuginfo: null };
    }
  };
}

/** 406 when the client accepts no JSON (an empty Accept header is fine). */
export function acceptJson() {
  return async (ctx: Context, next: Next) => {
    const accept = ctx.get('accept');
    if (accept && !ctx.accepts('application/json')) {
      ctx.status = 406;
      ctx.body = {
        errors: [{ status: 406, title: 'Not Acceptable', detail: `Only application/json is provided; ${accept} is not acceptable.`, request_id: ctx.state.requestId }],
      };
      return;
    }
    await next();
  };
}

/** Reads a JSON body of at most `limit` bytes into ctx.state.body (POST/PUT only). */
export function jsonBody(limit: number) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' && ctx.method !== 'PUT') return next();
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > limit) throw errors.bodyTooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw errors.bodyTooLarge();
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') ctx.state.body = undefined;
    else {
      try {
        ctx.state.body = JSON.parse(text);
      } catch {
        throw errors.notJson();
      }
    }
    await next();
  };
}

/** Pecan strips a `.json` suffix: /v2/lbaas/loadbalancers.json is the collection. */
export function stripJsonSuffix() {
  return async (ctx: Context, next: Next) => {
    if (ctx.path.endsWith('.json')) ctx.path = ctx.path.slice(0, -'.json'.length);
    await next();
  };
}

const LBAAS_COLLECTIONS = /^\/v2\/(loadbalancers|listeners|pools|healthmonitors|l7policies|quotas|providers|flavors|flavorprofiles|availabilityzones|availabilityzoneprofiles)(\/|$)/;

/** Rewrites /v2.0/... to /v2/... and /v2/<lbaas collection>... to /v2/lbaas/<collection>... */
export function canonicalApiPath() {
  return async (ctx: Context, next: Next) => {
    let path = ctx.path;
    if (path === '/v2.0' || path.startsWith('/v2.0/')) path = `/v2${path.slice('/v2.0'.length)}`;
    if (LBAAS_COLLECTIONS.test(path)) path = `/v2/lbaas${path.slice('/v2'.length)}`;
    if (path !== ctx.path) ctx.path = path;
    await next();
  };
}

export { ApiError };
