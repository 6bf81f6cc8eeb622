/**
 * A load test's live figures on the dashboard, in a real headless Chromium (Debian's
 * `chromium`, driven by playwright-core): an open-model load test on a real worker node
 * against a real HTTP server (20 ms, every 10th request a 503); while it runs, the page shows
 * the rate near the asked one, the asked rate, the whole iteration's and the GET step's
 * percentiles (at least the server's latency), and the errors by kind. A screenshot is kept in
 * test-results/dashboard-loadtest.png (a CI artifact, not committed).
 *
 * Runs under Node only (playwright-core drives the browser from Node); skipped with a note when
 * no Chromium is installed (CI installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadTest } from '../coordinator/loadtest-api.ts';
import { ROOT, spawnWorker, type WorkerProcess } from './helpers/cluster.ts';
import { freePort, startTarget } from './helpers/targets.ts';

const IS_DENO = 'Deno' in globalThis;
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const SCENARIO = join(ROOT, 'test', 'fixtures', 'http-scenario.ts');

test('while a load test runs, the dashboard shows its rate against the asked one, percentiles per step, errors by kind', async () => {
  if (IS_DENO) return console.log('dashboard load-test test: runs under Node (playwright-core); skipped under Deno');
  if (!CHROMIUM) return console.log('dashboard load-test test: no Chromium here (apt-get install chromium): skipped');
  const { chromium } = await import('playwright-core');
  const server = await startTarget({ delayMs: 20, failEvery: 10 });
  const targetUrl = server.url;
  const port = await freePort();
  const token = 'dashboard-loadtest-token';
  const workers: WorkerProcess[] = [spawnWorker({ url: `ws://127.0.0.1:${port}`, token, name: 'gen', concurrency: 1 })];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const rate = 40;
    let opened: Promise<void> | undefined;
    let failure: unknown;
    const seen: { rate: number; target: number; second: number }[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const watch = async () => {
      await page.goto(`http://127.0.0.1:${port}/wsfutures/`);
      await page.waitForSelector('#loadtest:not([hidden])', { timeout: 15_000 });
      const shown = () =>
        page.$eval('#loadtest', (s) => {
          const d = (s as unknown as { dataset: Record<string, string> }).dataset;
          return { rate: Number(d.rate), target: Number(d.target), second: Number(d.second) };
        });
      // Once a few seconds are complete, the figures are those of a steady load.
      for (const end = Date.now() + 20_000; (await shown()).second < 3;) {
        if (Date.now() > end) throw new Error('the page never showed the third second of the test');
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let i = 0; i < 4; i++) {
        seen.push(await shown());
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    let figures: { text: string; steps: { step: string; p50: number; errors: number; text: string }[] } | undefined;
    const result = await loadTest({
      scenario: SCENARIO,
      rate,
      duration: '9s',
      params: { target: targetUrl },
      pool: { maxWorkers: 0, listen: { port }, token, log: false },
      minSlots: 1,
      segmentMs: 1000,
      onProgress: () => {
        opened ??= watch().then(async () => {
          figures = {
            text: (await page.textContent('#loadtest'))!,
            steps: await page.$$eval(
              '#lt-steps tr',
              (rows) =>
                rows.map((r) => ({
                  step: r.getAttribute('data-step')!,
                  p50: Number(r.getAttribute('data-p50')),
                  errors: Number(r.getAttribute('data-errors')),
                  text: r.textContent!,
                })),
            ),
          };
          mkdirSync(join(ROOT, 'test-results'), { recursive: true });
          await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard-loadtest.png'), fullPage: true });
        }, (err: unknown) => {
          failure = err;
        });
      },
    });
    await opened;
    if (failure) throw failure;
    console.log(`page saw ${JSON.stringify(seen)}; result ${result.rate.toFixed(1)}/s; steps ${JSON.stringify(figures?.steps)}`);
    assert.ok(figures, 'the page showed the load test while it ran');
    assert.ok(seen.length === 4 && seen.every((s) => s.target === rate), `the asked rate shown: ${JSON.stringify(seen)}`);
    // Per-second figures wobble with when each report lands; their mean is the asked rate.
    const mean = seen.reduce((a, s) => a + s.rate, 0) / seen.length;
    assert.ok(Math.abs(mean - rate) / rate <= 0.25, `the rate shown (${seen.map((s) => s.rate).join(', ')}) is near ${rate}/s`);
    assert.ok(seen.at(-1)!.second >= seen[0]!.second, 'the second shown moves on');
    const [whole, get] = ['iteration', 'GET'].map((name) => figures!.steps.find((s) => s.step === name));
    assert.ok(whole && get, `rows for the whole iteration and the GET step: ${JSON.stringify(figures.steps)}`);
    assert.ok(whole!.p50 >= 20 && get!.p50 >= 20 && get!.p50 < 1000, `p50 at least the server's 20 ms: ${whole!.p50}, ${get!.p50}`);
    // Every 10th response is a 503: counted by kind on the whole iteration.
    assert.ok(whole!.errors > 0, 'errors counted');
    assert.match(whole!.text, 'HTTP 503');
    assert.match(figures.text, 'iterations/s asked');
    assert.match(figures.text, /p99/);
  } finally {
    await browser.close();
    for (const w of workers) await w.kill();
    server.server.close();
  }
});

test.run();
