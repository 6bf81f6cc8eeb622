/**
 * The load-test driver on its own, in one process (no pool: a segment run without a task
 * reports only at its end): a closed-model scenario whose iterations fail at once, without
 * waiting for anything, still lets the segment end on time (its virtual users give the event
 * loop a turn now and then; before, they kept it in microtasks and the segment never ended —
 * should that come back, this file hangs until the runner's time limit).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as hdr from 'hdr-histogram-js';
import { runSegment, type SegmentConfig } from '../shared/loadtest-driver.ts';

const config = (testId: string): SegmentConfig => ({ testId, model: 'closed', durationMs: 300, loadFrom: 5, loadTo: 5, maxInFlight: 1000, final: true, params: {}, drainMs: 1000 });

test('iterations that throw at once: the segment ends on time, every error counted by kind', async () => {
  const t0 = Date.now();
  const report = await runSegment(() => {
    throw new Error('boom');
  }, config('sync-throw'));
  const took = Date.now() - t0;
  assert.ok(took < 5000, `the 300 ms segment took ${took} ms`);
  assert.ok(report.ended > 0 && report.ended === report.started, `${report.started} started, ${report.ended} ended`);
  assert.equal(report.errors.iteration, { boom: report.ended });
});

test('iterations that reject at once (async): the same', async () => {
  const t0 = Date.now();
  const report = await runSegment(async () => {
    throw new TypeError('bad input');
  }, config('async-reject'));
  assert.ok(Date.now() - t0 < 5000, `the 300 ms segment took ${Date.now() - t0} ms`);
  assert.ok(report.ended > 0);
  assert.equal(report.errors.iteration, { TypeError: report.ended });
});

test('an iteration under a millisecond is measured to the microsecond', async () => {
  // Each iteration spins 300 µs. Measured in whole milliseconds, its p50 would read 0 (the
  // histogram's floor, 1 µs) or 1,000 µs.
  const report = await runSegment(() => {
    const until = performance.now() + 0.3;
    while (performance.now() < until);
  }, { ...config('sub-ms'), loadFrom: 1, loadTo: 1 });
  assert.ok(report.ended > 50, `${report.ended} iterations ended`);
  const h = hdr.decodeFromCompressedBase64(report.histograms.iteration!);
  const p50 = h.getValueAtPercentile(50);
  h.destroy();
  assert.ok(p50 >= 250 && p50 < 900, `p50 ${p50} µs for iterations of 300 µs`);
});

test.run();
