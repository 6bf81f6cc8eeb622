/**
 * HTTP clients side by side on one loopback target at the same concurrency, each in this one
 * process, interleaved round by round: what a load-test iteration's client can do at best.
 * Used to choose the client behind a scenario's `ctx.http`.
 *
 * Usage: npx tsx scripts/bench/http-clients.ts [--seconds 5] [--rounds 2] [--concurrency 50]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { Pool, request as undiciRequest } from 'undici';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const seconds = arg('seconds', 5);
const rounds = arg('rounds', 2);
const concurrency = arg('concurrency', 50);

const code =
  `const s = require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('ok'); }); s.keepAliveTimeout = 60000; s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
const url = `http://127.0.0.1:${port}/`;

async function loop(one: () => Promise<void>): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await one();
      n++;
    }
  }));
  return n / seconds;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const pool = new Pool(url, { connections: concurrency });
const clients: Record<string, () => Promise<number>> = {
  async autocannon() {
    // @ts-expect-error autocannon ships no types; only its documented result fields are read.
    const { default: autocannon } = (await import('autocannon')) as { default: (o: object) => Promise<{ requests: { total: number } }> };
    const r = await autocannon({ url, connections: concurrency, duration: seconds });
    return r.requests.total / seconds;
  },
  'undici Pool.request': () =>
    loop(async () => {
      const r = await pool.request({ path: '/', method: 'GET' });
      await r.body.arrayBuffer();
    }),
  'undici request (global agent)': () =>
    loop(async () => {
      const r = await undiciRequest(url);
      await r.body.arrayBuffer();
    }),
  'http.request keep-alive': () =>
    loop(() =>
      new Promise<void>((resolve, reject) => {
        http.get(url, { agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      })
    ),
  fetch: () =>
    loop(async () => {
      const r = await fetch(url);
      await r.arrayBuffer();
    }),
};

const results = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(clients)) {
    const rate = await run();
    (results.get(name) ?? results.set(name, []).get(name)!).push(rate);
  }
}
console.log(`${concurrency} at a time, ${seconds} s × ${rounds} rounds, interleaved; target: node:http in its own process`);
for (const [name, rates] of results) console.log(`${name.padEnd(32)} ${rates.map((r) => Math.round(r).toLocaleString('en-US').padStart(8)).join(' ')} req/s`);
await pool.close();
agent.destroy();
child.kill('SIGKILL');
