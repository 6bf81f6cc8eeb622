/**
 * Messages between a worker node's network thread and its task threads (postMessage, inside
 * one process). Arguments and results stay msgpack bytes on this hop: the network thread never
 * decodes them, and the bytes are transferred, not copied.
 */
import type { WireError } from '../shared/errors.ts';

export interface ThreadRun {
  t: 'run';
  id: number;
  /** file: URL of the module to import. */
  url: string;
  f: string;
  a: Uint8Array;
  chunk: boolean;
  attempt: number;
}

export interface ThreadAbort {
  t: 'abort';
  id: number;
  reason: string;
}

export type ToThread = ThreadRun | ThreadAbort;

export interface ThreadDone {
  t: 'done';
  id: number;
  v?: Uint8Array;
  e?: WireError;
  /** Milliseconds the task ran. */
  d: number;
}

export type FromThread = ThreadDone;
