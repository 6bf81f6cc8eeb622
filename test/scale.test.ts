/**
 * 200 worker nodes on one coordinator: they register and attach, the pool sees 200 ready nodes,
 * 20,000 tiny tasks spread over them with every result right, and when they disconnect the pool
 * sees them gone. The nodes are light ones (test/helpers/light-nodes.ts): real connections and
 * the real protocol, no task threads, so the coordinator is what is exercised.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { add } from './fixtures/tasks.ts';
import { TASKS_URL, waitFor, within } from './helpers/cluster.ts';
import { startLightNodes } from './helpers/light-nodes.ts';

const NODES = 200;
const TASKS = 20_000;

test(`${NODES} nodes: all ready, ${TASKS} tasks spread over them with the right results, then all gone`, async () => {
  const logs: string[] = [];
  const pool = new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 0, log: (level, m) => logs.push(`${level}: ${m}`) });
  let light: Awaited<ReturnType<typeof startLightNodes>> | undefined;
  try {
    await waitFor(() => pool.url !== undefined, 10_000, 'the pool listening');
    light = await within(startLightNodes(pool.url!, pool.token, NODES), 20_000, `${NODES} nodes connecting`);
    await pool.ready(NODES, { timeout: 10_000 });
    // ready() counts attached slots; a node's own `ready` (its state) may follow a moment later.
    await waitFor(() => pool.stats().nodes.filter((n) => n.state === 'ready').length === NODES, 5_000, `${NODES} nodes in state ready`);
    assert.is(pool.stats().nodes.length, NODES);
    assert.is(pool.slots, NODES);

    const futures = Array.from({ length: TASKS }, (_, i) => pool.submit(add, i, 1));
    const results = await within(Promise.all(futures), 20_000, `${TASKS} tasks`);
    for (let i = 0; i < TASKS; i++) if (results[i] !== i + 1) assert.unreachable(`task ${i} returned ${results[i]}`);
    const ran = light.nodes.map((n) => n.ran);
    assert.is(ran.reduce((a, b) => a + b, 0), TASKS);
    // Spread: every node ran some, none ran more than a few times its share.
    assert.ok(Math.min(...ran) > 0, `a node ran nothing: ${ran.join(',')}`);
    assert.ok(Math.max(...ran) <= (TASKS / NODES) * 4, `uneven spread: ${Math.min(...ran)}–${Math.max(...ran)}`);
    assert.is(pool.stats().completed, TASKS);

    await light.close();
    await waitFor(() => pool.stats().nodes.every((n) => n.state === 'lost'), 10_000, 'every node seen gone');
    assert.is(pool.slots, 0);
    assert.is(pool.workers().length, 0);
    assert.equal(logs.filter((l) => l.startsWith('warn') && !l.includes('lost')), [], 'no warning but the nodes leaving');
  } finally {
    await light?.close();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
