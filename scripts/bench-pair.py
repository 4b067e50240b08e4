#!/usr/bin/python3
"""Paired timing: runs command A and command B in turn (A B A B ...) after one warm-up each and prints the
median wall time, the median peak memory of each, and the median of the per-pair ratios A/B (a ratio taken
pair by pair holds when the machine's speed drifts). Usage: bench-pair.py RUNS 'COMMAND A' 'COMMAND B'
(each string is run by sh -c; its output is discarded)."""
import os
import statistics
import subprocess
import sys
import time


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def main():
    n, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    run(a), run(b)  # warm-up
    ta, tb, ma, mb, ratios, codes = [], [], [], [], [], set()
    for _ in range(n):
        x, mx, ca = run(a)
        y, my, cb = run(b)
        ta.append(x), tb.append(y), ma.append(mx), mb.append(my), ratios.append(x / y)
        codes |= {ca, cb}
    med = statistics.median
    print(f"A: wall median {med(ta):.3f} s (min {min(ta):.3f}, max {max(ta):.3f}), peak {med(ma):.0f} MB")
    print(f"B: wall median {med(tb):.3f} s (min {min(tb):.3f}, max {max(tb):.3f}), peak {med(mb):.0f} MB")
    print(f"ratio A/B: median {med(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}) over {n} pairs"
          + ("" if codes == {0} else f"; exit codes seen {sorted(codes)}"))


if __name__ == "__main__":
    main()
