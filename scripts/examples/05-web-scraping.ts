/**
 * The seed's web scraping, with no internet: this script starts an HTTP server on 127.0.0.1
 * whose pages answer after a delay (as a distant site would), then downloads five of them one
 * after another and with an AsyncPoolExecutor of five workers — JavaScript's counterpart of
 * the ThreadPoolExecutor for I/O-bound work.
 *
 *   npx tsx scripts/examples/05-web-scraping.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AsyncPoolExecutor } from '../../coordinator/index.ts';
import { demoScale, type ExampleContext, finishedIn, isMain, perfCounter, section } from './kit.ts';

const SITES = ['www.google.com', 'www.youtube.com', 'www.facebook.com', 'www.twitter.com', 'www.instagram.com'];

/** The seed's `download_site`. A closure would do as well: AsyncPoolExecutor sends nothing anywhere. */
async function downloadSite(url: string): Promise<Uint8Array> {
  console.log(`Downloading ${url}...`);
  const response = await fetch(url);
  const content = new Uint8Array(await response.arrayBuffer());
  console.log(`Downloaded ${url}: ${content.length} bytes`);
  return content;
}

/** Serves `/<site>` after `latencyMs`, with a page whose size depends on the site. */
async function startSlowServer(latencyMs: number): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const site = (req.url ?? '/').slice(1);
    const body = `<!doctype html><title>${site}</title>` + `<p>${site} says hello.</p>`.repeat(200 + site.length * 40);
    setTimeout(() => {
      // `connection: close`: no idle keep-alive sockets to hold the server open at the end.
      res.writeHead(200, { 'content-type': 'text/html', connection: 'close' });
      res.end(body);
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function run({ scale }: Pick<ExampleContext, 'scale'>): Promise<void> {
  const latencyMs = Math.round(1000 * scale);
  const { server, base } = await startSlowServer(latencyMs);
  const urls = SITES.map((site) => `${base}/${site}`);
  console.log(`A local server at ${base} answers every page after ${latencyMs} ms.`);
  try {
    section('One after another');
    let start = perfCounter();
    for (const url of urls) await downloadSite(url);
    const sequential = finishedIn(start);

    section('AsyncPoolExecutor with maxWorkers: 5');
    start = perfCounter();
    {
      await using executor = new AsyncPoolExecutor({ maxWorkers: 5 });
      let total = 0;
      for await (const content of executor.map(downloadSite, urls)) total += content.length;
      console.log(`Processed ${urls.length} pages, ${total} bytes in all`);
    }
    const concurrent = finishedIn(start);
    console.log(`\nSpeed-up: ${(sequential / Math.max(concurrent, 0.01)).toFixed(1)}x: the waits overlap.`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

if (isMain(import.meta)) await run({ scale: demoScale() });
