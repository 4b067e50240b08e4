"""Training curves of Med-SA 2.0 (train2.py logs) -> PNG: loss and the best candidate's IoU on the training
batches, both phases end to end, and samples/s. Usage: plots2.py BASE_LOG ADAPT_LOG OUT.png"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def smooth(y, k=9):
    y = np.asarray(y, float)
    return y if len(y) < k else np.convolve(y, np.ones(k) / k, mode="valid")


def main():
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    off = 0
    for p, name in ((sys.argv[1], "base (128 px, batch 16)"), (sys.argv[2], "256-px fine-tuning (batch 8, 1 thread)")):
        if not os.path.exists(p):
            continue
        rows = [json.loads(l) for l in open(p) if l.strip()]
        if not rows:
            continue
        st = np.array([r["step"] for r in rows]) + off
        for a, key in ((ax[0], "loss"), (ax[1], "iou_best")):
            y = smooth([r[key] for r in rows])
            a.plot(st[len(st) - len(y):], y, label=name)
        ax[2].plot(st, [r["samples_per_s"] for r in rows], ".", label=name)
        off = st[-1]
    for a, t in zip(ax, ("loss (BCE + Dice + IoU MSE, scored round)", "IoU of the best candidate (training batches)",
                         "samples/s (2 CPU cores)")):
        a.set_xlabel("optimiser step")
        a.set_title(t, fontsize=10)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[3], dpi=80)
    print("wrote", sys.argv[3])


if __name__ == "__main__":
    main()
