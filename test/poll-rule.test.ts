/**
 * The busy-poll rule (shared/poll-rule.ts) as pure logic: fed the waits a machine would give,
 * does it poll when polling brings answers sooner, and sleep when it does not?
 *
 * One side alone: a machine is modelled by two numbers, how long an answer takes while this side
 * polls (`quick`) and while it sleeps (`slow`, which includes waking up). A poll shorter than
 * `quick` runs out and the answer comes as if it had slept. Both sides of a round trip, the
 * leader with the rule and the follower doing as told: `roundTrips` below.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PollRule, PROBE_PERIOD_MS, PROBE_PERIOD_RARELY_MS, PROBE_SLEEP_EVERY, PROBE_WINDOW_MS, REACH_BUDGETS } from '../shared/poll-rule.ts';

const BUDGET = 0.1; // ms, the default 100 µs

interface Machine {
  quick: number;
  slow: number;
}

/** The wall clock the rules see, ms; each wait moves it on. */
let clock = 0;

/** Runs `waits` waits on `machine`; returns how many polled and the mean wait, ms. */
function drive(rule: PollRule, machine: Machine, waits: number): { polled: number; meanMs: number } {
  let polled = 0;
  let total = 0;
  for (let i = 0; i < waits; i++) {
    const pollMs = rule.next(false, clock);
    const waited = pollMs >= machine.quick ? machine.quick : machine.slow;
    if (pollMs > 0) polled++;
    total += waited;
    clock += waited + 0.01;
    rule.record(waited, pollMs);
  }
  return { polled, meanMs: total / waits };
}

/** Drives `rule` on `machine` until it polls (or `limitMs` of clock pass); returns the clock time it took. */
function untilPolling(rule: PollRule, machine: Machine, limitMs: number): number {
  const from = clock;
  while (!rule.state.polling && clock - from < limitMs) drive(rule, machine, 1);
  return clock - from;
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

test('it finds out when polling starts to pay: after a slow phase, the quick mode within a few probe windows', () => {
  const rule = new PollRule(BUDGET);
  // Cold code and a collection: every answer takes 400 µs, polled or not.
  drive(rule, { quick: 0.4, slow: 0.4 }, 20_000);
  assert.is(rule.state.polling, false);
  // Warm now, with slow wake-ups: only the polling probes can tell.
  const took = untilPolling(rule, { quick: 0.025, slow: 0.15 }, 10_000);
  assert.ok(rule.state.polling, 'it never started polling');
  assert.ok(took <= PROBE_PERIOD_RARELY_MS + 1, `it took ${took} ms to start polling`);
});

test('polling that does not bring answers sooner stops: long tasks, and cores taken by other work', () => {
  // Answers after 5 ms (a long task): polls run out every time.
  const long = new PollRule(BUDGET);
  const a = drive(long, { quick: 5, slow: 5 }, 1_600);
  assert.is(long.state.polling, false);
  // Probe windows that keep saying sleep come every 256 ms (8 s of 5 ms waits here); a wait of
  // 5 ms outlasts a window, so one probe per window.
  assert.ok(a.polled <= 4 + (1_600 * 5.01) / PROBE_PERIOD_RARELY_MS, `${a.polled} of 1600 waits polled`);

  // Contended cores: the poller takes the core the answer needs, so polled waits are longer
  // even when the answer comes within the budget.
  const contended = new PollRule(BUDGET);
  const b = drive(contended, { quick: 0.09, slow: 0.07 }, 1_600);
  assert.is(contended.state.polling, false);
  // Every wait that begins in a window probes: at most the windows' share of the time.
  assert.ok(b.polled <= (1_600 * 2 * PROBE_WINDOW_MS) / PROBE_PERIOD_MS, `${b.polled} of 1600 waits polled`);

  // No gain: waking up costs nothing, so polling would only burn CPU.
  const free = new PollRule(BUDGET);
  drive(free, { quick: 0.03, slow: 0.031 }, 1_600);
  assert.is(free.state.polling, false);
});

test('it backs off when polls start to run out (contention the OS figures miss), and comes back after it ends', () => {
  const rule = new PollRule(BUDGET);
  const quiet = { quick: 0.025, slow: 0.06 };
  drive(rule, quiet, 200);
  assert.is(rule.state.polling, true);
  // A CPU hog starts: the answer's sender waits for a core, polls run out.
  const hog = { quick: 1, slow: 0.5 };
  let waits = 0;
  while (rule.state.polling && waits < 100) waits += drive(rule, hog, 1).polled >= 0 ? 1 : 0;
  assert.is(rule.state.polling, false);
  // Not at the first few misses: on a VM, stalls come in runs of dozens of waits (a collection,
  // a vCPU taken away) while polling still pays. A hundred waits of 1 ms polled at most 0.1 ms
  // each: 10 ms of CPU, once.
  assert.ok(waits <= 100, `it polled ${waits} waits into the contention`);
  drive(rule, hog, 5_000);
  const took = untilPolling(rule, quiet, 10_000);
  assert.ok(rule.state.polling, 'it never came back to polling');
  assert.ok(took <= PROBE_PERIOD_RARELY_MS + 1, `it took ${took} ms to come back`);
});

test('round trips in short runs with pauses between: probes still come, and a cold first answer does not keep it asleep', () => {
  const rule = new PollRule(BUDGET);
  // The first answer takes 1 ms (cold code), then one slept wait.
  rule.record(1, rule.next(false, clock));
  clock += 1;
  rule.record(0.06, rule.next(false, clock));
  assert.is(rule.state.polling, false);
  // Runs of 20 ms of round trips, one every 128 ms, each beginning 10 ms into the period (the
  // caller does other things in between): fixed slices of the wall clock would never be probed.
  const machine = { quick: 0.025, slow: 0.06 };
  let runs = 0;
  while (!rule.state.polling && runs < 20) {
    clock = (Math.floor(clock / PROBE_PERIOD_MS) + 1) * PROBE_PERIOD_MS + 10;
    const until = clock + 20;
    while (clock < until) drive(rule, machine, 1);
    runs++;
  }
  assert.ok(rule.state.polling, 'it never started polling');
  assert.ok(runs <= 3, `it took ${runs} runs`);
});

test('runs of stalls (dozens of waits of 1 ms now and then) do not end polling that pays', () => {
  const rule = new PollRule(BUDGET);
  const quiet = { quick: 0.025, slow: 0.06 };
  drive(rule, quiet, 200);
  assert.is(rule.state.polling, true);
  let polled = 0;
  let waits = 0;
  for (let episode = 0; episode < 10; episode++) {
    // 30 waits of 1 ms whether polled or not, then 500 usual ones.
    polled += drive(rule, { quick: 1, slow: 1 }, 30).polled;
    polled += drive(rule, quiet, 500).polled;
    waits += 530;
  }
  assert.is(rule.state.polling, true);
  assert.ok(polled >= waits * 0.95, `${polled} of ${waits} waits polled`);
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

test('how long it polls: the budget (the reach after a poll that ran out); the first wait polls the budget', () => {
  const rule = new PollRule(BUDGET);
  assert.is(rule.next(), BUDGET);
  rule.record(0.02, BUDGET);
  assert.is(rule.next(), 0, 'the second wait sleeps, to measure that too');
  rule.record(0.1, 0);
  // The whole budget, not a guess at the wait: a poll shorter than the slowest usual answers
  // runs out on them, and a rule that counts those misses stops polling where it pays.
  assert.is(rule.next(), BUDGET);
  // A poll that runs out: the next one polls the reach (4 budgets), to outlast the other side
  // waking up late in turn; then polls are as before.
  rule.record(0.15, BUDGET);
  assert.is(rule.next(), BUDGET * REACH_BUDGETS);
  rule.record(0.03, BUDGET * REACH_BUDGETS);
  assert.is(rule.next(), BUDGET);
});

test('once polling, it goes on while polled waits are about as long as slept ones, and stops once they are clearly longer', () => {
  // Polling starts where it clearly pays (polled waits under 0.8 of slept ones)…
  const rule = new PollRule(BUDGET);
  drive(rule, { quick: 0.02, slow: 0.05 }, 200);
  assert.is(rule.state.polling, true);
  // …and the estimates drifting near each other (noise, a slower phase) does not flip it:
  // polled 45 µs against slept 50 µs.
  let polled = 0;
  for (let i = 0; i < 20 * PROBE_SLEEP_EVERY; i++) {
    const pollMs = rule.next(false, clock);
    if (pollMs > 0) polled++;
    const waited = pollMs > 0 ? 0.045 : 0.05;
    clock += waited + 0.01;
    rule.record(waited, pollMs);
  }
  assert.is(rule.state.polling, true);
  assert.ok(polled >= 19 * PROBE_SLEEP_EVERY, `${polled} of ${20 * PROBE_SLEEP_EVERY} waits polled`);
  // Polled waits clearly longer than slept ones (the poller takes a core the answer needs):
  // it stops within a few sleeping probes.
  let waits = 0;
  while (rule.state.polling && waits < 10 * PROBE_SLEEP_EVERY) {
    const pollMs = rule.next(false, clock);
    const waited = pollMs > 0 ? 0.07 : 0.05;
    clock += waited + 0.01;
    rule.record(waited, pollMs);
    waits++;
  }
  assert.is(rule.state.polling, false);
  assert.ok(waits <= 3 * PROBE_SLEEP_EVERY, `it polled ${waits} waits after polling became slower`);
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

/**
 * Both sides of sequential round trips: a leader with the rule (a coordinator), and a follower
 * (a task thread) that polls after answering for as long as the leader said with its message.
 * A side that is not polling when the other's message arrives takes `wakeMs` (drawn between
 * `wakeMs` and twice that) to read it; the follower works `workMs` per message, the leader
 * `thinkMs` between an answer and its next message; the wire takes `netMs` each way; `stall` is
 * the chance that a side stalls 300 µs after reading (a collection, a descheduled thread).
 * Returns the median and mean trip and the CPU each side spent polling per trip, over the last
 * half of the trips, ms.
 */
function roundTrips(o: { wakeMs: number; budget?: number; stall?: number; thinkMs?: number; trips?: number }) {
  const { wakeMs, stall = 0, trips = 30_000 } = o;
  const workMs = 0.01;
  const thinkMs = o.thinkMs ?? 0.01;
  const netMs = 0.005;
  let seed = 7;
  const random = (): number => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
  const wake = (): number => wakeMs * (1 + random());
  const stalled = (): number => (random() < stall ? 0.3 : 0);
  const leader = new PollRule(o.budget ?? BUDGET);
  let t = 0;
  /** When the follower sent its latest answer, and how long it polls after it. */
  let fSince = 0;
  let fPoll = 0;
  /** When the leader read the latest answer. */
  let answered = NaN;
  const kept: number[] = [];
  const spent = { leader: 0, follower: 0 };
  for (let i = 0; i < trips; i++) {
    const start = t;
    const lPoll = leader.lead(false, start, i === 0 ? Infinity : start - answered);
    const hint = leader.followerMs;
    const atF = start + netMs;
    const fRead = atF + (atF - fSince <= fPoll ? 0 : wake());
    if (i >= trips / 2) spent.follower += Math.min(fPoll, fRead - fSince);
    const fSent = fRead + workMs + stalled();
    fSince = fSent;
    fPoll = hint;
    const atL = fSent + netMs;
    const lRead = atL + (atL - start <= lPoll ? 0 : wake());
    leader.record(lRead - start, lPoll);
    answered = lRead;
    if (i >= trips / 2) spent.leader += Math.min(lPoll, lRead - start);
    t = lRead + thinkMs + stalled();
    if (i >= trips / 2) kept.push(t - start);
  }
  kept.sort((x, y) => x - y);
  const n = kept.length;
  return { p50: kept[n >> 1]!, mean: kept.reduce((sum, x) => sum + x, 0) / n, cpuLeader: spent.leader / n, cpuFollower: spent.follower / n };
}

test('both sides: when waking up takes longer than the budget, the leader finds the fast mode for both', () => {
  // A trip with both sides polling takes 30 µs; waking up takes 150–300 µs per side. Polling on
  // one side alone would not pay: the leader's polls would run out while the follower wakes.
  const off = roundTrips({ wakeMs: 0.15, budget: 0 });
  const both = roundTrips({ wakeMs: 0.15 });
  assert.ok(off.p50 > 0.4, `polling off: p50 ${off.p50} ms`);
  assert.ok(both.p50 < 0.035, `p50 ${both.p50} ms (off: ${off.p50})`);
  assert.ok(both.mean < off.mean / 3, `mean ${both.mean} ms (off: ${off.mean})`);
  // And it keeps it through stalls on either side (5% of the messages).
  const stalls = roundTrips({ wakeMs: 0.15, stall: 0.05 });
  assert.ok(stalls.p50 < 0.035, `with stalls: p50 ${stalls.p50} ms`);
  // Where waking up is quick but still most of a trip, too.
  const quick = roundTrips({ wakeMs: 0.03 });
  const quickOff = roundTrips({ wakeMs: 0.03, budget: 0 });
  assert.ok(quick.p50 < quickOff.p50 * 0.6, `quick wake-ups: p50 ${quick.p50} ms (off: ${quickOff.p50})`);
});

test('both sides: the follower does not poll through gaps polling cannot shorten, and waits are no longer than with polling off', () => {
  // The leader sends its next message 3 ms after each answer; a 10 ms budget would cover that,
  // but polling would save a wake-up of 30–60 µs out of 3 ms.
  const gaps = roundTrips({ wakeMs: 0.03, budget: 10, thinkMs: 3 });
  const gapsOff = roundTrips({ wakeMs: 0.03, budget: 0, thinkMs: 3 });
  assert.ok(gaps.cpuFollower < 0.05, `the follower polled ${gaps.cpuFollower * 1000} µs per trip`);
  assert.ok(gaps.mean <= gapsOff.mean * 1.02, `mean ${gaps.mean} ms (off: ${gapsOff.mean})`);
  // Waking up costs nothing: neither side polls, bar the probes.
  const free = roundTrips({ wakeMs: 0.001 });
  const freeOff = roundTrips({ wakeMs: 0.001, budget: 0 });
  assert.ok(free.cpuLeader + free.cpuFollower < 0.005, `${(free.cpuLeader + free.cpuFollower) * 1000} µs polled per trip`);
  assert.ok(free.mean <= freeOff.mean * 1.02, `mean ${free.mean} ms (off: ${freeOff.mean})`);
});

test('the follower polls only while the leader does, never more than the budget, and sleeps through its sleeping probes', () => {
  const rule = new PollRule(BUDGET);
  const think = 0.01;
  // The first wait: the follower had not been told to poll, so neither side does; the follower
  // is told to poll after it (a probe of both sides).
  assert.is(rule.lead(false, 0, Infinity), 0);
  assert.is(rule.followerMs, BUDGET);
  rule.record(0.2, 0);
  assert.is(rule.lead(false, 0, think), BUDGET);
  rule.record(0.03, BUDGET);
  let sleptAhead = 0;
  let bothSlept = 0;
  for (let i = 0; i < 4 * PROBE_SLEEP_EVERY; i++) {
    const told = rule.followerMs;
    const poll = rule.lead(false, 0, think);
    assert.ok(rule.followerMs <= BUDGET, `follower told ${rule.followerMs} ms`);
    if (rule.followerMs === 0) sleptAhead++;
    if (poll === 0 && told === 0) bothSlept++;
    assert.ok(poll === 0 || told > 0, 'it polled while the follower slept');
    rule.record(poll > 0 ? 0.03 : 0.2, poll);
  }
  assert.is(rule.state.polling, true);
  // One wait in 64 sleeps on both sides: the follower is told to sleep with the message before it.
  assert.ok(sleptAhead >= 3 && sleptAhead <= 4, `told to sleep ${sleptAhead} times in ${4 * PROBE_SLEEP_EVERY} waits`);
  assert.is(bothSlept, sleptAhead);
  // After a pause longer than its poll the follower sleeps, so this side does not poll either,
  // and the follower is told to poll again as soon as the gaps are short again.
  assert.is(rule.lead(false, 0, 50), 0);
  rule.record(0.2, 0);
  let toldAfter = 0;
  for (let i = 0; i < 3; i++) {
    const told = rule.followerMs;
    const poll = rule.lead(false, 0, think);
    assert.ok(poll === 0 || told > 0, 'it polled while the follower slept');
    if (rule.followerMs > 0) toldAfter++;
    rule.record(poll > 0 ? 0.03 : 0.2, poll);
  }
  assert.ok(toldAfter >= 2, `the follower was told to poll ${toldAfter} times in the 3 waits after the pause`);
  // A leader whose own work between messages is longer than a round trip without polling
  // does not make the follower poll through it.
  rule.record(0.03, BUDGET);
  for (let i = 0; i < 10; i++) {
    rule.lead(false, 0, 0.5);
    rule.record(0.2, 0);
  }
  assert.is(rule.followerMs, 0);
});

test.run();
