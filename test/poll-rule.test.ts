/**
 * The busy-poll rule (shared/poll-rule.ts) as pure logic: fed the waits a machine would give,
 * does it poll when polling brings answers sooner, and sleep when it does not?
 *
 * A machine is modelled by two numbers: how long an answer takes while this side polls (`quick`)
 * and while it sleeps (`slow`, which includes waking up). A poll shorter than `quick` runs out
 * and the answer comes as if it had slept.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PollRule, PROBE_POLL_RARELY, PROBE_SLEEP_EVERY } from '../shared/poll-rule.ts';

const BUDGET = 0.1; // ms, the default 100 µs

interface Machine {
  quick: number;
  slow: number;
}

/** Runs `waits` waits on `machine`; returns how many polled and the mean wait, ms. */
function drive(rule: PollRule, machine: Machine, waits: number): { polled: number; meanMs: number } {
  let polled = 0;
  let total = 0;
  for (let i = 0; i < waits; i++) {
    const pollMs = rule.next();
    const waited = pollMs >= machine.quick ? machine.quick : machine.slow;
    if (pollMs > 0) polled++;
    total += waited;
    rule.record(waited, pollMs);
  }
  return { polled, meanMs: total / waits };
}

test('slow wake-ups: it polls, although a wait without polling is longer than the budget', () => {
  // Waking up takes longer than the budget (116 µs without polling, 23 µs with: a VM seen in
  // the wild); a rule that decides from the mean of all waits never starts polling here.
  const rule = new PollRule(BUDGET);
  const machine = { quick: 0.023, slow: 0.116 };
  drive(rule, machine, 20);
  assert.is(rule.state.polling, true);
  const { polled, meanMs } = drive(rule, machine, 640);
  // Every wait polls but the sleeping probes.
  assert.is(polled, 640 - 640 / PROBE_SLEEP_EVERY);
  assert.ok(meanMs < 0.03, `mean wait ${meanMs} ms`);
});

test('it finds out when polling starts to pay: after a slow phase, the quick mode within a few probes', () => {
  const rule = new PollRule(BUDGET);
  // Cold code and a collection: every answer takes 400 µs, polled or not.
  drive(rule, { quick: 0.4, slow: 0.4 }, 200);
  assert.is(rule.state.polling, false);
  // Warm now, with slow wake-ups: only the polling probes can tell.
  const machine = { quick: 0.025, slow: 0.15 };
  let waits = 0;
  while (!rule.state.polling && waits < 5_000) waits += drive(rule, machine, 1).polled >= 0 ? 1 : 0;
  assert.ok(rule.state.polling, 'it never started polling');
  assert.ok(waits <= 4 * PROBE_POLL_RARELY, `it took ${waits} waits to start polling`);
});

test('polling that does not bring answers sooner stops: long tasks, and cores taken by other work', () => {
  // Answers after 5 ms (a long task): polls run out every time.
  const long = new PollRule(BUDGET);
  const a = drive(long, { quick: 5, slow: 5 }, 1_600);
  assert.is(long.state.polling, false);
  // Probes that keep saying sleep come less and less often: 16, 32, … up to 128 waits apart.
  assert.ok(a.polled <= 4 + 1_600 / PROBE_POLL_RARELY, `${a.polled} of 1600 waits polled`);

  // Contended cores: the poller takes the core the answer needs, so polled waits are longer
  // even when the answer comes within the budget.
  const contended = new PollRule(BUDGET);
  const b = drive(contended, { quick: 0.09, slow: 0.07 }, 1_600);
  assert.is(contended.state.polling, false);
  assert.ok(b.polled <= 4 + 1_600 / PROBE_POLL_RARELY, `${b.polled} of 1600 waits polled`);

  // No gain: waking up costs nothing, so polling would only burn CPU.
  const free = new PollRule(BUDGET);
  drive(free, { quick: 0.03, slow: 0.031 }, 1_600);
  assert.is(free.state.polling, false);
});

test('it backs off within a few waits when contention starts, and comes back after it ends', () => {
  const rule = new PollRule(BUDGET);
  const quiet = { quick: 0.025, slow: 0.06 };
  drive(rule, quiet, 200);
  assert.is(rule.state.polling, true);
  // A CPU hog starts: the answer's sender waits for a core, polls run out.
  const hog = { quick: 1, slow: 0.5 };
  let waits = 0;
  while (rule.state.polling && waits < 100) waits += drive(rule, hog, 1).polled >= 0 ? 1 : 0;
  assert.is(rule.state.polling, false);
  assert.ok(waits <= 4, `it polled ${waits} waits into the contention`);
  drive(rule, hog, 500);
  waits = 0;
  while (!rule.state.polling && waits < 5_000) waits += drive(rule, quiet, 1).polled >= 0 ? 1 : 0;
  assert.ok(rule.state.polling, 'it never came back to polling');
  assert.ok(waits <= 4 * PROBE_POLL_RARELY, `it took ${waits} waits to come back`);
});

test('while the cores are contended it sleeps, without probing, and polls again after', () => {
  const rule = new PollRule(BUDGET);
  const machine = { quick: 0.025, slow: 0.15 };
  drive(rule, machine, 100);
  assert.is(rule.state.polling, true);
  for (let i = 0; i < 1_000; i++) {
    assert.is(rule.next(true), 0);
    rule.record(machine.slow, 0);
  }
  assert.ok(rule.next() > 0, 'it did not poll again once the cores were free');
});

test('in the long run, waits are never longer than with polling off', () => {
  const machines: Machine[] = [
    { quick: 0.025, slow: 0.15 },
    { quick: 0.025, slow: 0.04 },
    { quick: 0.09, slow: 0.07 },
    { quick: 0.2, slow: 0.15 },
    { quick: 3, slow: 3 },
  ];
  for (const machine of machines) {
    const rule = new PollRule(BUDGET);
    drive(rule, machine, 100);
    const { meanMs } = drive(rule, machine, 2_000);
    // Polling off waits `slow` every time; the probes may cost a little on top.
    assert.ok(meanMs <= machine.slow * 1.02, `${JSON.stringify(machine)}: mean wait ${meanMs} ms`);
  }
});

test('how long it polls: about twice the typical polled wait, at most the budget; the first wait polls the budget', () => {
  const rule = new PollRule(BUDGET);
  assert.is(rule.next(), BUDGET);
  rule.record(0.02, BUDGET);
  assert.is(rule.next(), 0, 'the second wait sleeps, to measure that too');
  rule.record(0.1, 0);
  const poll = rule.next();
  assert.ok(poll > 0.04 && poll < 0.05, `polls ${poll} ms after a 20 µs polled wait`);
  rule.record(0.09, poll);
  rule.record(0.09, poll);
  assert.is(rule.next(), BUDGET);
});

test('a budget of 0 never polls; a wait it cannot make sense of is ignored', () => {
  const off = new PollRule(0);
  for (let i = 0; i < 100; i++) {
    assert.is(off.next(), 0);
    off.record(0.02, 0);
  }
  const rule = new PollRule(BUDGET);
  rule.record(NaN, BUDGET);
  rule.record(-1, BUDGET);
  assert.is(rule.state.polledMs, undefined);
});

test.run();
