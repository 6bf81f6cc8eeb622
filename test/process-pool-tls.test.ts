/**
 * wss://: a pool given a certificate serves TLS; a worker node that trusts the issuing CA
 * (--ca) runs tasks over it, and one that does not is refused by TLS itself before any
 * wsfutures frame is exchanged. Certificates are made fresh by openssl for each run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { add, echo } from './fixtures/tasks.ts';
import { spawnWorker, startPool, waitFor, within } from './helpers/cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'wsf-tls-'));
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

// A private CA, and a certificate for 127.0.0.1 signed by it (what a user makes for a LAN).
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=wsfutures test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'));
openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
openssl(
  'x509',
  '-req',
  '-in',
  file('server.csr'),
  '-CA',
  file('ca.pem'),
  '-CAkey',
  file('ca.key'),
  '-CAcreateserial',
  '-days',
  '1',
  '-extfile',
  file('ext.cnf'),
  '-out',
  file('server.pem'),
);

const tls = { cert: readFileSync(file('server.pem')), key: readFileSync(file('server.key')) };

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a pool with tls serves wss:// and a worker node trusting the CA runs tasks over it', async () => {
  const pool = await startPool({ maxWorkers: 0, tls });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, args: ['--ca', file('ca.pem')] });
  try {
    assert.match(pool.url!, /^wss:\/\/127\.0\.0\.1:\d+\/wsfutures$/);
    await within(pool.ready(1), 30_000, 'the TLS worker node connecting');
    assert.is(await within(pool.submit(add, 20, 22), 10_000, 'a task over wss'), 42);
    // A large typed array travels as a fragment of its own, over TLS as over plain ws.
    const big = Float64Array.from({ length: 100_000 }, (_, i) => i / 2);
    const back = await within(pool.submit(echo, big), 10_000, 'a large typed array over wss');
    assert.ok(back instanceof Float64Array && back.length === big.length && back[99_999] === 49_999.5);
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a worker node that does not trust the certificate never connects', async () => {
  const pool = await startPool({ maxWorkers: 0, tls });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, args: ['--no-reconnect'] });
  try {
    const code = await within(worker.exited, 30_000, 'the untrusting worker node to give up');
    assert.is.not(code, 0);
    assert.match(worker.output, /certificate|self[- ]signed|UNABLE_TO_VERIFY/i);
    assert.is(pool.slots, 0, 'no slot was offered over an unverified connection');
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a plain ws:// worker node cannot talk to a wss:// pool', async () => {
  const pool = await startPool({ maxWorkers: 0, tls });
  const worker = spawnWorker({ url: pool.url!.replace('wss://', 'ws://'), token: pool.token, args: ['--no-reconnect'] });
  try {
    await within(worker.exited, 30_000, 'the plain worker node to give up');
    await waitFor(() => pool.slots === 0, 1000, 'no slots');
    assert.is(pool.slots, 0);
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
