/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * a real pool with two real worker nodes; the page shows both nodes and their slots, completed
 * counts rise while a map runs, a node killed with SIGKILL is marked lost; a screenshot is kept
 * in test-results/dashboard.png (a CI artifact, not committed).
 *
 * Runs under Node only (playwright-core drives the browser from Node); skipped with a note when
 * no Chromium is installed (CI installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleepThenEcho } from './fixtures/tasks.ts';
import { ROOT, spawnWorker, startPool, waitFor, type WorkerProcess } from './helpers/cluster.ts';

const IS_DENO = 'Deno' in globalThis;
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

test('the dashboard shows the nodes and their slots, counts rising during a map, and a killed node as lost', async () => {
  if (IS_DENO) return console.log('dashboard test: runs under Node (playwright-core); skipped under Deno');
  if (!CHROMIUM) return console.log('dashboard test: no Chromium here (apt-get install chromium): skipped');
  const { chromium } = await import('playwright-core');
  const pool = await startPool({ maxWorkers: 0 });
  const workers: WorkerProcess[] = [];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'node-a', concurrency: 2 }));
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'node-b', concurrency: 1 }));
    await pool.ready(3, { timeout: 60_000 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`http://127.0.0.1:${new URL(pool.url!).port}/wsfutures/`);
    await page.waitForSelector('tr[data-node="node-a"][data-state="ready"]', { timeout: 15_000 });
    await page.waitForSelector('tr[data-node="node-b"][data-state="ready"]', { timeout: 15_000 });
    assert.equal(await page.locator('tr[data-node="node-a"] .slot').count(), 2);
    assert.equal(await page.locator('tr[data-node="node-b"] .slot').count(), 1);
    assert.equal(await page.textContent('#slots'), '3');

    // A map of 240 sleeps of 10 ms on 3 slots: ~0.8 s; the page is updated twice a second.
    const seen: number[] = [];
    const mapped = (async () => {
      let n = 0;
      for await (const _ of pool.starmap(sleepThenEcho, Array.from({ length: 240 }, (_, i) => [10, i] as [number, number]))) n++;
      return n;
    })();
    const watching = (async () => {
      for (let i = 0; i < 40; i++) {
        seen.push(Number((await page.textContent('#completed'))!.replace(/,/g, '')));
        if (seen.at(-1) === 240) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    assert.equal(await mapped, 240);
    await watching;
    await page.waitForFunction("document.getElementById('completed').textContent === '240'", undefined, { timeout: 5_000 });
    const between = seen.filter((v) => v > 0 && v < 240);
    assert.ok(between.length > 0, `the count rose while the map ran: ${seen.join(' ')}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `never went down: ${seen.join(' ')}`);
    // Per node and per function too.
    const perNode = await page.$$eval('tr[data-node]', (rows) => rows.map((r) => Number(r.getAttribute('data-completed'))));
    assert.equal(perNode.reduce((a, b) => a + b, 0), 240);
    assert.match((await page.textContent('tr[data-function="sleepThenEcho"]'))!, '240');

    workers[1]!.signal('SIGKILL');
    await page.waitForSelector('tr[data-node="node-b"][data-state="lost"]', { timeout: 15_000 });
    await page.waitForSelector('tr[data-node="node-a"][data-state="ready"]');
    await waitFor(() => pool.slots === 2, 10_000, 'the pool dropping the killed node');
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    const shot = join(ROOT, 'test-results', 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
    for (const w of workers) await w.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
