#!/usr/bin/env python3
"""The Python peer: concurrent.futures.ProcessPoolExecutor with 2 workers.

Run by scripts/bench/index.ts when python3 is on the PATH. Prints one line per figure,
"BENCH-FIGURE {json}", in the format of scripts/bench/measure.ts; progress goes to stderr.
Options: --smoke (tiny sizes).

Figures: submit + as_completed of tiny tasks (tasks/s), sequential submit -> result (p50, p99),
map with chunksize=1000 (tasks/s), 1 MiB and 16 MiB bytes round trips (MiB/s, each payload
counted once, 4 in flight), and the speed-up of CPU-bound tasks on 2 workers over 1.
"""
import json
import math
import platform
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait

SUITE = "python"
WORKERS = 2
MIB = 1024 * 1024
CHUNKSIZE = 1000
PAYLOAD_WINDOW = 4  # payloads in flight: two per worker, as the other suites do

SMOKE = "--smoke" in sys.argv[1:]
SIZES = (
    dict(warmup=100, tiny=1_000, sequential=100, mapped=20_000, echo1=4, echo16=1, spin_tasks=4, spin_rounds=200_000, max_s=2.0)
    if SMOKE
    else dict(warmup=1_000, tiny=30_000, sequential=3_000, mapped=2_000_000, echo1=100, echo16=12, spin_tasks=8, spin_rounds=1_500_000, max_s=10.0)
)


def noop(value):
    return value


def echo(data):
    return data


def spin(rounds):
    """CPU-bound: the xorshift32 loop of tasks.ts, in Python (far slower, but only the ratio counts)."""
    x = 2463534242
    for _ in range(rounds):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    return x


def emit(workload, label, value, unit, count, seconds, note=None):
    figure = dict(suite=SUITE, workload=workload, label=label, value=value, unit=unit, count=count, seconds=seconds)
    if note:
        figure["note"] = note
    print("BENCH-FIGURE " + json.dumps(figure), flush=True)


def progress(message):
    print(f"  [{SUITE}] {message}", file=sys.stderr, flush=True)


def percentile(samples, p):
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def tiny_all_at_once(pool):
    n = SIZES["tiny"]
    t0 = time.perf_counter()
    futures = [pool.submit(noop, i) for i in range(n)]
    for _ in as_completed(futures):
        pass
    s = time.perf_counter() - t0
    emit("tiny-all-at-once", "python tiny tasks all at once", n / s, "tasks/s", n, s, f"{WORKERS} workers, submit() x{n}, then as_completed")


# As measure.ts sequentialWarmup: every suite makes as many round trips before measuring one.
SEQUENTIAL_WARMUP = 50 if SMOKE else 5_000


def sequential(pool):
    for i in range(SEQUENTIAL_WARMUP):
        pool.submit(noop, i).result()
    samples = []
    t0 = time.perf_counter()
    while len(samples) < SIZES["sequential"] and (not samples or time.perf_counter() - t0 < SIZES["max_s"]):
        started = time.perf_counter()
        pool.submit(noop, len(samples)).result()
        samples.append((time.perf_counter() - started) * 1e6)
    s = time.perf_counter() - t0
    emit("sequential-p50", "python sequential p50", percentile(samples, 50), "µs", len(samples), s)
    emit("sequential-p99", "python sequential p99", percentile(samples, 99), "µs", len(samples), s)


def mapped(pool):
    n = SIZES["mapped"]
    t0 = time.perf_counter()
    for _ in pool.map(noop, range(n), chunksize=CHUNKSIZE):
        pass
    s = time.perf_counter() - t0
    emit("map-chunked", f"python map chunksize={CHUNKSIZE}", n / s, "tasks/s", n, s)


def payload(pool, mib, count):
    data = bytes(mib * MIB)
    pool.submit(echo, data).result()
    t0 = time.perf_counter()
    deadline = t0 + SIZES["max_s"]
    sent = done = 0
    in_flight = set()
    while done < sent or sent == 0:
        while sent < count and len(in_flight) < PAYLOAD_WINDOW and (sent == 0 or time.perf_counter() < deadline):
            in_flight.add(pool.submit(echo, data))
            sent += 1
        finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
        for f in finished:
            if len(f.result()) != len(data):
                raise RuntimeError("echo returned the wrong length")
        done += len(finished)
    s = time.perf_counter() - t0
    emit(f"payload-{mib}mib", f"python bytes {mib} MiB round trip", done * mib / s, "MiB/s", done, s, f"{PAYLOAD_WINDOW} in flight, counted once")


def cpu_speedup():
    tasks, rounds = SIZES["spin_tasks"], SIZES["spin_rounds"]
    seconds = {}
    for workers in (1, WORKERS):
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(noop, range(workers * 2)))  # start the workers before the clock
            t0 = time.perf_counter()
            list(pool.map(spin, [rounds] * tasks))
            seconds[workers] = time.perf_counter() - t0
    emit("cpu-speedup", f"python CPU-bound speed-up 1 -> {WORKERS} workers", seconds[1] / seconds[WORKERS], "x", tasks, seconds[1] + seconds[WORKERS],
         f"{tasks} tasks: {seconds[1]:.2f} s on 1 worker, {seconds[WORKERS]:.2f} s on {WORKERS}")


def main():
    print("BENCH-INFO " + json.dumps({"python": platform.python_version()}), flush=True)
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        for _ in as_completed([pool.submit(noop, i) for i in range(SIZES["warmup"])]):
            pass
        progress("tiny tasks all at once")
        tiny_all_at_once(pool)
        progress("sequential round trips")
        sequential(pool)
        progress(f"map chunksize={CHUNKSIZE}")
        mapped(pool)
        progress("bytes 1 MiB")
        payload(pool, 1, SIZES["echo1"])
        progress("bytes 16 MiB")
        payload(pool, 16, SIZES["echo16"])
    progress("CPU-bound speed-up")
    cpu_speedup()


if __name__ == "__main__":
    main()
