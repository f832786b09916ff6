// The messages ("frames") between an IpcTransport in a child process and the IpcBrokerPort of its
// parent, over Node's IPC channel (JSON). Both ends validate every frame they receive with these
// schemas and ignore (and log) what does not match. The signed envelope travels as base64: signing
// and checking stay in core.ts, the parent only moves bytes between the child and its broker queues.
//
//   child -> parent                               parent -> child
//   hello                                         welcome                    (handshake)
//   publish {id, dest, content, wantsReply}       done {id} | failed {id}    (answer to every request with an id)
//   consume {id, tag, source, prefetch}           deliver {tag, delivery, content, redelivered, replyTo?}
//   settle {delivery, requeue}                    reply {content}            (an answer for this child's calls)
//   cancel {id}: stop every consumer
//   close {id}: detach (unacked deliveries requeued), delete the reply queue
import { z } from 'zod';
import { AmphoraIdSchema } from '../messages.ts';

export const IPC_PROTOCOL_VERSION = 1;

const frameId = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Reply addresses are UUIDs made by the broker side. */
const replyAddress = z.string().regex(/^[0-9a-f-]{36}$/, 'must be a reply address (UUID)');

export const ipcDestinationSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('amphora'), amphoraId: AmphoraIdSchema }),
  z.strictObject({ kind: z.literal('health') }),
  z.strictObject({ kind: z.literal('controller') }),
  z.strictObject({ kind: z.literal('reply'), address: replyAddress }),
]);

export const ipcSourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('amphora'), amphoraId: AmphoraIdSchema }),
  z.strictObject({ kind: z.literal('health') }),
  z.strictObject({ kind: z.literal('controller') }),
]);

/** base64 of at most `maxBytes` bytes. */
function content(maxBytes: number) {
  return z.base64().max(Math.ceil(maxBytes / 3) * 4, `larger than ${maxBytes} bytes`);
}

export function childFrameSchema(maxMessageBytes: number) {
  return z.discriminatedUnion('t', [
    z.strictObject({ t: z.literal('hello'), v: z.literal(IPC_PROTOCOL_VERSION) }),
    z.strictObject({
      t: z.literal('publish'),
      id: frameId,
      dest: ipcDestinationSchema,
      content: content(maxMessageBytes),
      wantsReply: z.boolean(),
      expiresAt: z.number().int().positive().optional(),
    }),
    z.strictObject({ t: z.literal('consume'), id: frameId, tag: frameId, source: ipcSourceSchema, prefetch: z.number().int().min(1).max(10_000) }),
    z.strictObject({ t: z.literal('cancel'), id: frameId }),
    z.strictObject({ t: z.literal('settle'), delivery: frameId, requeue: z.boolean() }),
    z.strictObject({ t: z.literal('close'), id: frameId }),
  ]);
}

/** Why the parent refused a request: the child turns these into UnroutableError, TransportClosedError or Error. */
export const IPC_FAILURES = ['unroutable', 'refused', 'closed', 'error'] as const;

export function parentFrameSchema(maxMessageBytes: number) {
  return z.discriminatedUnion('t', [
    z.strictObject({ t: z.literal('welcome'), v: z.literal(IPC_PROTOCOL_VERSION) }),
    z.strictObject({ t: z.literal('done'), id: frameId }),
    z.strictObject({ t: z.literal('failed'), id: frameId, reason: z.enum(IPC_FAILURES), error: z.string().max(4096) }),
    z.strictObject({
      t: z.literal('deliver'),
      tag: frameId,
      delivery: frameId,
      content: content(maxMessageBytes),
      redelivered: z.boolean(),
      replyTo: replyAddress.optional(),
    }),
    z.strictObject({ t: z.literal('reply'), content: content(maxMessageBytes) }),
  ]);
}

export type ChildFrame = z.infer<ReturnType<typeof childFrameSchema>>;
export type ParentFrame = z.infer<ReturnType<typeof parentFrameSchema>>;
export type IpcFailure = (typeof IPC_FAILURES)[number];

/** `path: message` of every issue, for the log line of an ignored frame. */
export function frameIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 5).map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(frame)'}: ${i.message}`);
}
