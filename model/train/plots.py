"""Loss and Dice curves of both phases -> PNG. Usage: plots.py BASE_LOG ADAPT_LOG OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read(p):
    rows = [json.loads(l) for l in open(p) if l.strip()]
    tr = [r for r in rows if "loss" in r]
    va = [r for r in rows if "val" in r]
    return tr, va


def smooth(y, k=15):
    if len(y) < k:
        return np.asarray(y)
    return np.convolve(y, np.ones(k) / k, mode="valid")


def main():
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    off = 0
    for p, name in ((sys.argv[1], "base (generic data)"), (sys.argv[2], "adapt (medical, base frozen)")):
        tr, va = read(p)
        if not tr:
            continue
        steps = np.array([r["step"] for r in tr]) + off
        loss = [r["loss0"] for r in tr]
        s = smooth(loss)
        ax[0].plot(steps[len(steps) - len(s):], s, label=f"{name}: first-pass loss (BCE+Dice, smoothed)")
        vs = np.array([r["step"] for r in va]) + off
        ax[1].plot(vs, [r["val"]["click"] for r in va], "o-", label=f"{name}: val Dice, 1 click")
        ax[1].plot(vs, [r["val"]["box"] for r in va], "s-", label=f"{name}: val Dice, box")
        off = steps[-1]
    ax[0].set_xlabel("optimiser step (batch: REPORT.md)")
    ax[0].set_ylabel("loss")
    ax[0].legend(fontsize=8)
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("Dice (held-out split of the phase's data)")
    ax[1].set_ylim(0, 1)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[3], dpi=90)
    print("wrote", sys.argv[3])


if __name__ == "__main__":
    main()
