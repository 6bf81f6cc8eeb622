#!/usr/bin/env python3
"""The Dask peer: dask.distributed on a LocalCluster of 2 worker processes, 1 thread each.

Run by scripts/bench/index.ts when python3 can import `distributed` (Debian: python3-distributed).
Prints one line per figure, "BENCH-FIGURE {json}", in the format of scripts/bench/measure.ts;
progress goes to stderr. Options: --smoke (tiny sizes, and only the workloads of the first cluster
up to 1 MiB: starting a cluster takes seconds).

Each workload uses what Dask offers as its fastest idiomatic way:
- tiny tasks: client.map(noop, range(n), pure=False), then client.gather (tasks/s);
- sequential round trips: client.submit(noop, i, pure=False).result() (p50, p99);
- chunked map: the items cut by hand into lists of 1000, client.map(noop_chunk, chunks), then
  client.gather and a loop over every value in order (tasks/s). dask.bag (partition_size=1000)
  measured slower. Dask serializes a list item by item, so the same with each chunk pickled into
  bytes by hand is a second figure, ~10x faster;
- 1 MiB and 16 MiB bytes round trips, 4 in flight, each payload counted once (MiB/s);
- the speed-up of CPU-bound tasks on 2 workers over 1 (a cluster of each size);
- recovery: a worker process killed while a batch of tasks runs; Dask's nanny restarts it and the
  scheduler reruns what was lost: the figure is the batch's time over the same batch undisturbed.
"""
import json
import logging
import math
import os
import pickle
import signal
import sys
import time
import warnings

SUITE = "dask"
WORKERS = 2
MIB = 1024 * 1024
CHUNKSIZE = 1000
PAYLOAD_WINDOW = 4  # payloads in flight: two per worker, as the other suites do

SMOKE = "--smoke" in sys.argv[1:]
SIZES = (
    dict(warmup=100, tiny=300, sequential=30, mapped=5_000, echo1=2, echo16=1, spin_tasks=2, spin_rounds=200_000, recovery=0, max_s=2.0)
    if SMOKE
    # Fewer tiny tasks than python-pool.py's 30,000 and fewer mapped items than its 2,000,000: Dask
    # costs milliseconds per task (and per chunk of 1000 listed items), and the rates hold over
    # 10,000 tasks and 200,000 items; the full sizes would take minutes.
    else dict(warmup=1_000, tiny=10_000, sequential=3_000, mapped=200_000, echo1=100, echo16=12, spin_tasks=8, spin_rounds=1_500_000, recovery=40, max_s=10.0)
)
# measure.ts sequentialWarmup makes 5,000 round trips before measuring one, for the JIT of the
# JavaScript suites; Python has none to warm, and 5,000 Dask round trips would take a minute.
SEQUENTIAL_WARMUP = 50 if SMOKE else 500


def emit(workload, label, value, unit, count, seconds, note=None):
    figure = dict(suite=SUITE, workload=workload, label=label, value=value, unit=unit, count=count, seconds=seconds)
    if note:
        figure["note"] = note
    print("BENCH-FIGURE " + json.dumps(figure), flush=True)


def emit_error(workload, err):
    line = f"{type(err).__name__}: {err}".split("\n")[0]
    print("BENCH-ERROR " + json.dumps(dict(suite=SUITE, workload=workload, error=line)), flush=True)


def progress(message):
    print(f"  [{SUITE}] {message}", file=sys.stderr, flush=True)


try:
    import dask
    import distributed
    from distributed import Client, LocalCluster, as_completed
except ImportError as err:
    print(f"BENCH-SKIP python3 cannot import dask.distributed ({err}); on Debian: apt-get install python3-distributed", flush=True)
    sys.exit(0)


def noop(value):
    return value


def noop_chunk(values):
    return [noop(v) for v in values]


def echo(data):
    return data


def spin(rounds):
    """CPU-bound: the xorshift32 loop of tasks.ts, in Python (as python-pool.py)."""
    x = 2463534242
    for _ in range(rounds):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    return x


def worker_pid():
    return os.getpid()


def sleep_then(value, seconds):
    time.sleep(seconds)
    return value


def percentile(samples, p):
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def cluster(workers):
    # No dashboard (it needs bokeh and a port), and quiet logs: the harness shows stderr.
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR)


def tiny_all_at_once(client):
    n = SIZES["tiny"]
    t0 = time.perf_counter()
    values = client.gather(client.map(noop, range(n), pure=False))
    s = time.perf_counter() - t0
    if values[-1] != n - 1:
        raise RuntimeError("noop returned the wrong value")
    emit("tiny-all-at-once", "dask tiny tasks all at once", n / s, "tasks/s", n, s, f"{WORKERS} workers, client.map(noop, range({n}), pure=False), then gather")


def sequential(client):
    for i in range(SEQUENTIAL_WARMUP):
        client.submit(noop, i, pure=False).result()
    samples = []
    t0 = time.perf_counter()
    while len(samples) < SIZES["sequential"] and (not samples or time.perf_counter() - t0 < SIZES["max_s"]):
        started = time.perf_counter()
        client.submit(noop, len(samples), pure=False).result()
        samples.append((time.perf_counter() - started) * 1e6)
    s = time.perf_counter() - t0
    emit("sequential-p50", "dask sequential p50", percentile(samples, 50), "µs", len(samples), s)
    emit("sequential-p99", "dask sequential p99", percentile(samples, 99), "µs", len(samples), s)


def mapped(client):
    n = SIZES["mapped"]
    t0 = time.perf_counter()
    chunks = [list(range(start, min(n, start + CHUNKSIZE))) for start in range(0, n, CHUNKSIZE)]
    count = 0
    for chunk in client.gather(client.map(noop_chunk, chunks, pure=False)):
        for _ in chunk:
            count += 1
    s = time.perf_counter() - t0
    if count != n:
        raise RuntimeError(f"map yielded {count} results for {n} items")
    emit("map-chunked", f"dask map, chunks of {CHUNKSIZE}", n / s, "tasks/s", n, s, "lists of 1000 items through client.map, then gather")


def noop_pickled(blob):
    return pickle.dumps(noop_chunk(pickle.loads(blob)))


def mapped_pickled(client):
    """The same, each chunk pickled by hand into bytes both ways: Dask serializes a list argument
    or result item by item, which this skips (a tuning a Dask user would reach for)."""
    n = SIZES["mapped"]
    t0 = time.perf_counter()
    blobs = [pickle.dumps(list(range(start, min(n, start + CHUNKSIZE)))) for start in range(0, n, CHUNKSIZE)]
    count = 0
    for blob in client.gather(client.map(noop_pickled, blobs, pure=False)):
        for _ in pickle.loads(blob):
            count += 1
    s = time.perf_counter() - t0
    if count != n:
        raise RuntimeError(f"map yielded {count} results for {n} items")
    emit("map-chunked-pickled", f"dask map, chunks of {CHUNKSIZE} pickled by hand", n / s, "tasks/s", n, s, "each chunk and its result pickle.dumps'd into bytes: Dask serializes lists item by item")


def payload(client, mib, count):
    data = bytes(mib * MIB)
    client.submit(echo, data, pure=False).result()
    t0 = time.perf_counter()
    deadline = t0 + SIZES["max_s"]
    sent = done = 0
    in_flight = as_completed()
    while sent < count and sent < PAYLOAD_WINDOW:
        in_flight.add(client.submit(echo, data, pure=False))
        sent += 1
    for future in in_flight:
        if len(future.result()) != len(data):
            raise RuntimeError("echo returned the wrong length")
        done += 1
        if sent < count and time.perf_counter() < deadline:
            in_flight.add(client.submit(echo, data, pure=False))
            sent += 1
    s = time.perf_counter() - t0
    emit(f"payload-{mib}mib", f"dask bytes {mib} MiB round trip", done * mib / s, "MiB/s", done, s, f"{PAYLOAD_WINDOW} in flight, counted once")


def cpu_speedup():
    tasks, rounds = SIZES["spin_tasks"], SIZES["spin_rounds"]
    seconds = {}
    for workers in (1, WORKERS):
        with cluster(workers) as c, Client(c) as client:
            client.gather(client.map(noop, range(workers * 2), pure=False))
            t0 = time.perf_counter()
            client.gather(client.map(spin, [rounds] * tasks, pure=False))
            seconds[workers] = time.perf_counter() - t0
    emit("cpu-speedup", f"dask CPU-bound speed-up 1 -> {WORKERS} workers", seconds[1] / seconds[WORKERS], "x", tasks, seconds[1] + seconds[WORKERS],
         f"{tasks} tasks: {seconds[1]:.2f} s on 1 worker, {seconds[WORKERS]:.2f} s on {WORKERS}")


def recovery(client):
    """A batch of 50 ms tasks, undisturbed, then again with one worker process killed (SIGKILL)
    a quarter of the way in: the second batch's time over the first."""
    n, task_s = SIZES["recovery"], 0.05
    t0 = time.perf_counter()
    client.gather(client.map(sleep_then, range(n), [task_s] * n, pure=False))
    calm = time.perf_counter() - t0
    pids = client.run(worker_pid)
    t0 = time.perf_counter()
    futures = client.map(sleep_then, range(n), [task_s] * n, pure=False)
    time.sleep(calm / 4)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    values = client.gather(futures)
    hit = time.perf_counter() - t0
    if values != list(range(n)):
        raise RuntimeError("the batch came back wrong after a worker was killed")
    emit("recovery", "dask batch with a worker killed, time ratio", hit / calm, "x", n, calm + hit,
         f"{n} tasks of {task_s * 1000:.0f} ms: {calm:.2f} s undisturbed, {hit:.2f} s with one worker process killed a quarter of the way in")


def step(name, run):
    progress(name)
    try:
        run()
    except Exception as err:  # one failed workload must not hide the others
        emit_error(name, err)


def main():
    warnings.simplefilter("ignore")  # "large object in task graph": the payloads are meant to travel
    print("BENCH-INFO " + json.dumps({"dask": distributed.__version__}), flush=True)
    with cluster(WORKERS) as c, Client(c) as client:
        client.gather(client.map(noop, range(SIZES["warmup"]), pure=False))
        step("tiny tasks all at once", lambda: tiny_all_at_once(client))
        step("sequential round trips", lambda: sequential(client))
        step(f"map chunks of {CHUNKSIZE}", lambda: mapped(client))
        step(f"map chunks of {CHUNKSIZE}, pickled by hand", lambda: mapped_pickled(client))
        step("bytes 1 MiB", lambda: payload(client, 1, SIZES["echo1"]))
        if SMOKE:
            return  # the smoke run checks that the suite runs; two more clusters would double its time
        step("bytes 16 MiB", lambda: payload(client, 16, SIZES["echo16"]))
        step("a worker killed mid-batch", lambda: recovery(client))
    step("CPU-bound speed-up", cpu_speedup)


if __name__ == "__main__":
    main()
