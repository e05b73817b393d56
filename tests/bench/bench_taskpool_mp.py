#!/usr/bin/env python3
"""The peer of bench-taskpool (../shared/BENCHMARKS.md): Python's multiprocessing.Pool(2).

Started by bench-taskpool as a subprocess; prints one line per figure, "name value" (medians
of the repetitions), and nothing else on stdout. Usage:

    bench_taskpool_mp.py N_CHUNK1 N_CHUNK1000 REPS APPLY_CALLS START_REPS IMB_TASKS UNIT_US

The imbalanced workload takes its durations (in units) from stdin, one line of integers, so
that it runs the very list bench-taskpool runs.
"""

import multiprocessing
import statistics
import sys
import time


def noop(x):
    return x


def spin(units_and_us):
    units, unit_us = units_and_us
    end = time.perf_counter() + units * unit_us * 1e-6
    while time.perf_counter() < end:
        pass
    return units


def static_half(args):
    durations, unit_us = args
    for d in durations:
        spin((d, unit_us))
    return len(durations)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    n1, n1000, reps, apply_calls, start_reps, imb_tasks, unit_us = (int(a) for a in sys.argv[1:8])
    line = sys.stdin.readline().split()
    durations = [int(d) for d in line][:imb_tasks]
    out = {}
    with multiprocessing.Pool(2) as pool:
        pool.map(noop, range(1000), chunksize=1)  # warm up
        for name, n, chunk in (("map_chunk1", n1, 1), ("map_chunk1000", n1000, 1000)):
            rates = []
            for _ in range(reps):
                dt = timed(lambda: pool.map(noop, range(n), chunksize=chunk))
                rates.append(n / dt)
            out[name + "_per_s"] = statistics.median(rates)

        for _ in range(max(10, apply_calls // 20)):
            pool.apply(noop, (1,))
        lat = []
        for _ in range(apply_calls):
            t0 = time.perf_counter()
            pool.apply(noop, (1,))
            lat.append((time.perf_counter() - t0) * 1e6)
        out["apply_median_us"] = statistics.median(lat)

        # The same list as given, and sorted ascending (small tasks first).
        for name, ds in (("imbalanced", durations), ("imbalanced_sorted", sorted(durations))):
            if not ds:
                continue
            dyn = []
            stat = []
            half = len(ds) // 2
            halves = [(ds[:half], unit_us), (ds[half:], unit_us)]
            items = [(d, unit_us) for d in ds]
            for _ in range(reps):
                dyn.append(timed(lambda: pool.map(spin, items, chunksize=1)) * 1e3)
                stat.append(timed(lambda: pool.map(static_half, halves, chunksize=1)) * 1e3)
            out[name + "_dynamic_ms"] = statistics.median(dyn)
            out[name + "_static_ms"] = statistics.median(stat)

    # The default start method (fork on Linux before Python 3.14), and spawn, which starts a
    # fresh interpreter per worker as our workers are a fresh exec of the program.
    for name, ctx in (("start_stop_ms", multiprocessing), ("start_stop_spawn_ms",
                                                          multiprocessing.get_context("spawn"))):
        starts = []
        for _ in range(start_reps + 1):
            t0 = time.perf_counter()
            p = ctx.Pool(2)
            p.close()
            p.join()
            starts.append((time.perf_counter() - t0) * 1e3)
        out[name] = statistics.median(starts[1:])  # the first warms caches
    out["start_method"] = multiprocessing.get_start_method()

    for k, v in out.items():
        print(k, v)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
