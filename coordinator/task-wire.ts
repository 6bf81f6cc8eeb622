/**
 * A task on the wire, from the pool's side: a queued task (`PoolTask`) becomes the `run` item a
 * lane gets (its arguments encoded, checked against both sides' frame limits), and the outcome
 * the lane sends back settles its future (the value decoded, a chunk's values checked against
 * its calls, a remote error rebuilt with the frame that says where it ran). No sockets, no
 * state: process-pool.ts calls these with the peer at hand.
 */
import { attachedBytes, decodeValue, encodeValue } from '../shared/codec.ts';
import { type ErrorClass, errorFromWire, ProtocolError, SerializationError, type WireClassRef } from '../shared/errors.ts';
import { FRAME_OVERHEAD_BYTES, itemOverheadBytes } from '../shared/frames.ts';
import { describePeerValue } from '../shared/describe.ts';
import { FLAT_CHUNK_VERSION, type TaskOutcome, type TaskSpec } from '../shared/protocol.ts';
import type { ChunkOutcome } from './executor.ts';
import type { Future } from './future.ts';
import type { FunctionRecord } from './cluster-stats.ts';

/** A task as the pool keeps it until it settles. */
export interface PoolTask {
  future: Future<unknown>;
  /** Module id and export name: the function, by reference. */
  m: number;
  f: string;
  /** The arguments (for a chunk: the list of calls, as `chunk` says), encoded when sent. */
  args: unknown;
  /** 0: one call; a chunk of calls given as argument arrays (1) or as single arguments (2). */
  chunk: 0 | 1 | 2;
  /** The function's name, for messages. */
  fn: string;
  /** Its kind: the scheduler's duration estimates, and its function's counters. */
  kind: TaskKind;
  /** When it was queued (performance.now()), for the queue-wait figures. */
  queuedAt: number;
}

/** What kind of task it is: one per function (chunks of it apart). */
export interface TaskKind {
  id: number;
  stat: FunctionRecord;
}

/** What this needs to know of the lane's node. */
export interface TaskPeer {
  label: string;
  name: string;
  hostname: string;
  remoteAddress: string;
  /** Its protocol version. */
  version: number;
  /** The largest frame it accepts. */
  maxMessageBytes: number;
}

/**
 * The `run` item for `task` as attempt `attempt` on a lane of `peer`. Large typed arrays among
 * the arguments are sent from their own memory, not copied: they are collected in `scratch` (a
 * reused list: most tasks have none) and copied out only when there are some. Throws a
 * SerializationError when the arguments cannot be encoded or do not fit this pool's frame limit
 * (`ownLimit`) or the node's.
 */
export function encodeTask(task: PoolTask, id: number, attempt: number, peer: TaskPeer | undefined, ownLimit: number, scratch: Uint8Array[]): TaskSpec {
  // A chunk of single arguments travels as one flat array; a node too old to know that form
  // gets an argument array per call.
  let chunk = task.chunk;
  let args = task.args;
  if (chunk === 2 && peer && peer.version < FLAT_CHUNK_VERSION) {
    args = (args as unknown[]).map((item) => [item]);
    chunk = 1;
  }
  scratch.length = 0;
  const a = encodeValue(args, () => `the arguments of ${task.fn || 'the task'}()`, scratch);
  checkFits(task, a.length + attachedBytes(scratch), itemOverheadBytes(scratch.length, task.f), peer, ownLimit);
  return { id, m: task.m, f: task.f, a, x: scratch.length > 0 ? scratch.slice() : undefined, c: chunk || undefined, n: attempt };
}

function checkFits(task: PoolTask, size: number, overhead: number, peer: TaskPeer | undefined, own: number): void {
  const what = `the arguments of ${task.fn || 'the task'}()`;
  const total = FRAME_OVERHEAD_BYTES + overhead + size;
  if (total > own) {
    throw new SerializationError(`${what} encode to ${size} bytes (${total} with the task's frame), more than maxMessageBytes (${own}): raise maxMessageBytes or send less`);
  }
  // The node's own limit may be lower (a remote node started without a matching
  // --max-message-bytes): sending would only make it close the connection.
  if (peer && total > peer.maxMessageBytes) {
    throw new SerializationError(
      `${what} encode to ${size} bytes (${total} with the task's frame), more than worker node ${peer.label} accepts (--max-message-bytes ${peer.maxMessageBytes}): start it with --max-message-bytes ${own}`,
    );
  }
}

/**
 * Settles `task`'s future with the outcome a lane of `peer` sent: its value, its error (rebuilt,
 * its error class found by `errorClass`), or for a chunk the values up to the call that threw
 * and that error. An outcome that cannot be decoded, or a chunk answered with anything but one
 * value per call, fails the future instead.
 */
export function settleTask(task: PoolTask, item: TaskOutcome, peer: TaskPeer, errorClass: (ref: WireClassRef) => ErrorClass | undefined): void {
  const { future } = task;
  let value: unknown;
  try {
    value = item.v === undefined ? undefined : decodeValue(item.v, () => `the result of ${task.fn}()`, item.x);
  } catch (err) {
    future.setException(err);
    return;
  }
  if (task.chunk) {
    // One value per call, up to the call that threw: anything else would make map() yield
    // the wrong results (a string's characters, or nothing) without a word.
    const calls = (task.args as unknown[]).length;
    const values = value === undefined ? [] : value;
    if (!Array.isArray(values) || values.length > calls || (item.e === undefined && values.length !== calls)) {
      const got = Array.isArray(values) ? `${values.length} value(s)` : describePeerValue(values);
      future.setException(
        new ProtocolError(
          'WSF_PROTOCOL',
          `worker node ${peer.label} answered a chunk of ${calls} call(s) of ${task.fn}() with ${got}${item.e === undefined ? '' : ' and an error'}`,
        ),
      );
      return;
    }
    const outcome: ChunkOutcome<unknown> = { values };
    if (item.e) outcome.error = { thrown: errorFromWire(item.e, remoteFrame(task, item.id, peer), errorClass) };
    future.setResult(outcome);
  } else if (item.e) {
    future.setException(errorFromWire(item.e, remoteFrame(task, item.id, peer), errorClass));
  } else {
    future.setResult(value);
  }
}

/** The line added to a remote stack: which function, on which node, as which task. */
function remoteFrame(task: PoolTask, id: number, peer: TaskPeer): string {
  return `\n    at ${task.fn || 'task'} (wsfutures worker node "${peer.name}" on ${peer.hostname}, ${peer.remoteAddress}, task ${id})`;
}
