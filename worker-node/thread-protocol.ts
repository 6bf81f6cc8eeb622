/**
 * Messages between a worker node's main thread and its task threads (postMessage, inside one
 * process). There are few: tasks do not pass through the main thread at all. Each task thread
 * opens its own connection to the coordinator (a lane, see shared/protocol.ts) and reads its
 * tasks from it; the main thread only starts threads, and ends one whose aborted task does not
 * stop or that died.
 */

/** What a task thread needs to open its lane. */
export interface LaneConfig {
  /** The coordinator's URL. */
  url: string;
  /** The key derived from the token (the thread proves it holds it, as the node did). */
  key: Uint8Array;
  /** A CA certificate (PEM) to trust, for wss:// with a self-signed certificate. */
  ca?: string;
  /** The largest frame this node accepts. */
  maxMessageBytes: number;
  /** The largest frame the coordinator accepts (from its welcome): larger results fail. */
  peerMaxMessageBytes: number;
  /** How long to busy-poll the lane after sending results, µs (0: never). */
  busyPollMicros: number;
  /** The node's workerId and lane ticket, from the welcome. */
  node: string;
  ticket: string;
  /** This lane's number within the node. */
  lane: number;
  /**
   * Task modules: the coordinator's module id, the file: URL to import here, and its name on the
   * coordinator's machine (for messages).
   */
  modules: { id: number; url: string; name: string }[];
  /** Where this node resolves the packages task modules import (for messages). */
  installDir: string;
  /**
   * Shared with the node's main thread (a BigInt64Array of 2): [0] the id of the task running
   * now (0 between tasks), [1] exit code + 1 if the thread is exiting (0 otherwise). The main
   * thread reads them when the thread dies or must be ended, so the coordinator learns exactly
   * which task was running — results leave in batches, so "the first one not reported yet" may
   * well have finished.
   */
  state: SharedArrayBuffer;
  /**
   * Shared by all the node's threads (an Int32Array of 2): [0] how many of them are running a
   * task — a thread busy-polls for its next task only while none is: on a machine with few cores,
   * a polling thread would take CPU from a sibling's task; [1] 1 once the node is draining
   * (`currentTask().draining`).
   */
  busy: SharedArrayBuffer;
}

/** Import the modules, then connect and attach the lane. */
export interface ThreadStart {
  t: 'start';
  config: LaneConfig;
}

export type ToThread = ThreadStart;

/** The lane is attached: the thread takes tasks. */
export interface ThreadAttached {
  t: 'attached';
}

/** The lane's connection ended; the thread has stopped what it was running. */
export interface ThreadClosed {
  t: 'closed';
  code: number;
  reason: string;
}

/**
 * Task modules the thread could not import, each with a sentence saying why and what to do
 * (worker-node/import-failure.ts). Sent before the lane attaches; the attach tells the
 * coordinator too.
 */
export interface ThreadImportFailed {
  t: 'import-failed';
  failed: { id: number; error: string }[];
}

/** A line for the node's log. */
export interface ThreadLog {
  t: 'log';
  message: string;
}

export type FromThread = ThreadAttached | ThreadClosed | ThreadImportFailed | ThreadLog;
