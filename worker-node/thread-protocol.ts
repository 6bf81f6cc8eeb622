/**
 * Messages between a worker node's network thread and its task threads (postMessage, inside
 * one process). Arguments and results stay msgpack bytes on this hop: the network thread never
 * decodes them. Jobs and outcomes travel in batches: for tiny tasks the cost of one
 * postMessage (a thread wake-up each way) is larger than the task itself.
 */
import type { WireError } from '../shared/errors.ts';

export interface ThreadJob {
  id: number;
  /** file: URL of the module to import. */
  url: string;
  f: string;
  a: Uint8Array;
  chunk: boolean;
  attempt: number;
}

export interface ThreadRun {
  t: 'run';
  jobs: ThreadJob[];
}

export interface ThreadAbort {
  t: 'abort';
  id: number;
  reason: string;
}

/** Import these modules now, so the first task does not pay for loading them. */
export interface ThreadPreload {
  t: 'preload';
  urls: string[];
}

export type ToThread = ThreadRun | ThreadAbort | ThreadPreload;

export interface ThreadOutcome {
  id: number;
  v?: Uint8Array;
  e?: WireError;
  /** Milliseconds the task ran. */
  d: number;
}

export interface ThreadDone {
  t: 'done';
  outcomes: ThreadOutcome[];
}

/** The modules of a preload are imported (or failed to; the first task will say why). */
export interface ThreadLoaded {
  t: 'loaded';
}

export type FromThread = ThreadDone | ThreadLoaded;
