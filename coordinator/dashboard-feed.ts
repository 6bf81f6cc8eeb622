/**
 * The dashboard's live feed: while at least one dashboard is open, twice a second, the pool's
 * stats, the tasks that ended since the last update (the task stream, at most 2,000 an update:
 * the rest are counted, not sent), the last errors, and the live figures of a load test running
 * on the pool, as one JSON message to every open page.
 * Nothing is kept or sent while no page is open, so a pool nobody watches pays nothing.
 */
import type { ClusterStats, PoolStats } from './cluster-stats.ts';

/** How often open dashboards are updated. */
export const FEED_INTERVAL_MS = 500;

export class DashboardFeed {
  readonly #stats: () => PoolStats;
  readonly #cluster: ClusterStats;
  readonly #clients = new Set<(data: string) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The live figures of a load test running on the pool, if one is. */
  loadTest: (() => unknown) | undefined;

  constructor(stats: () => PoolStats, cluster: ClusterStats) {
    this.#stats = stats;
    this.#cluster = cluster;
  }

  /** Adds a page; returns the function that removes it. */
  open(send: (data: string) => void): () => void {
    this.#clients.add(send);
    this.#cluster.watching = true;
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#update(), FEED_INTERVAL_MS);
      // An open dashboard does not keep a finished program alive.
      this.#timer.unref?.();
    }
    // The first update at once, so the page fills in without waiting.
    send(this.#message());
    return () => {
      this.#clients.delete(send);
      if (this.#clients.size > 0) return;
      this.#cluster.watching = false;
      this.#cluster.takeSpans();
      clearInterval(this.#timer);
      this.#timer = undefined;
    };
  }

  close(): void {
    for (const c of [...this.#clients]) this.#clients.delete(c);
    this.#cluster.watching = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #message(): string {
    const { spans, dropped } = this.#cluster.takeSpans();
    return JSON.stringify({ stats: this.#stats(), spans, droppedSpans: dropped, errors: this.#cluster.recentErrors, loadTest: this.loadTest?.() });
  }

  #update(): void {
    const message = this.#message();
    for (const send of this.#clients) {
      try {
        send(message);
      } catch {
        // a page that went away: its request's close removes it
      }
    }
  }
}
