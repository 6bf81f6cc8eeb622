/**
 * `wsfutures loadtest --self --chaos kill=500ms`, as CI runs it: 20,000 tasks on local worker
 * nodes, one SIGKILLed every 500 ms and replaced; every task settles with the right value.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/cluster.ts';

const run = promisify(execFile);
const IS_DENO = 'Deno' in globalThis;

test('20,000 tasks with a node killed every 500 ms: 0 lost, 0 wrong', async () => {
  if (IS_DENO) return console.log('runs once, under Node (the command starts its own nodes)');
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'coordinator', 'cli.ts'),
    'loadtest',
    '--self',
    '--tasks',
    '20000',
    '--rate',
    '4000',
    '--nodes',
    '3',
    '--slots',
    '1',
    '--chaos',
    'kill=500ms',
  ];
  const out = await run(process.execPath, args, { cwd: ROOT, timeout: 120_000 }).then(
    (r) => ({ code: 0, text: r.stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, text: `${e.stdout}\n${e.stderr}` }),
  );
  console.log(out.text.split('\n').filter((l) => /tasks|lost|ok|FAIL/.test(l) && !l.includes('[wsfutures')).join('\n'));
  assert.equal(out.code, 0, out.text);
  const m = /completed (\d+), failed: (.*); lost (\d+), wrong (\d+); sent again after a lost node \(may have run twice\): (\d+); chaos: (\d+) kills/.exec(out.text);
  assert.ok(m, out.text);
  const [, completed, , lost, wrong, , kills] = m!;
  assert.equal([Number(lost), Number(wrong)], [0, 0]);
  assert.equal(Number(completed), 20_000);
  assert.ok(Number(kills) >= 5, `${kills} kills`);
});

test.run();
