"""The GUI's click-then-box flow, which the protocol of evaluate.py leaves out: one click at the structure's
deepest point, then a box around the structure drawn with the click kept and the click's answer fed back as
mask_input (what interaction/ and `medsa segment --state` do), tight (the reference's bounding box) or loose
(each side widened by 5-15 % of the box, seed 7). Reported with and without the manifest's box clip, and
without the feedback, per set and as the mean of sets; and the same boxes alone (no click), as evaluate.py's box
but loose too, and a very loose box alone (each side widened by 15-30 %); each box alone also tightened once
(`tightened`).
Usage: box_flow.py CKPT val|test [OUT.json]   (val: val_ranking.py's items; test: evaluate.py's)"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
import val_ranking  # noqa: E402
from medsa import load as L  # noqa: E402

ZOOM = {"box_margin": 2.0, "min_side": 48, "click_below": 0.02, "click_margin": 2.5, "max_frac": 0.8,
        "click_min_points": 2, "click_agree": 0.5}
RANKING = {"stability_weight": 1.0, "stability_offset": 1.0}


def tightened(meth, box, p):
    """Test-time box tightening (measured, not shipped): the box cut to the answer's bounding box + 1 px and
    decoded again alone; the answer itself when it is empty."""
    if not p.any():
        return p
    q = E.tight_box(p)
    nb = (max(box[0], q[0] - 1), max(box[1], q[1] - 1), min(box[2], q[2] + 1), min(box[3], q[3] + 1))
    meth.prev = None
    return meth.predict([], box=nb, use_prev=False)


def items(split):
    return val_ranking.validation_items() if split == "val" else E.test_items("all")


def main():
    torch.set_num_threads(int(os.environ.get("MEDSA_THREADS", "2")))
    ck, split = sys.argv[1], sys.argv[2]
    m = L.from_checkpoint(ck)
    m.eval()
    sets = items(split)
    rows = {}
    for clip in (False, True):
        meth = E.ModelSeg(m, ZOOM, RANKING, box_clip=clip)
        rng = np.random.default_rng(7)
        rng2 = np.random.default_rng(8)  # the very loose boxes: their own stream, so the loose ones stay as they were
        for name, sl, sp, win, gt in sets:
            meth.set_image(sl, sp, win)
            b = E.tight_box(gt)
            H, W = gt.shape
            w, h = b[2] - b[0] + 1, b[3] - b[1] + 1
            f = rng.uniform(0.05, 0.15, 4)
            loose = (max(0, b[0] - f[0] * w), max(0, b[1] - f[1] * h), min(W - 1, b[2] + f[2] * w),
                     min(H - 1, b[3] + f[3] * h))
            f = rng2.uniform(0.15, 0.30, 4)
            vloose = (max(0, b[0] - f[0] * w), max(0, b[1] - f[1] * h), min(W - 1, b[2] + f[2] * w),
                      min(H - 1, b[3] + f[3] * h))
            u, v = E.deepest(gt)
            cl = "clipped" if clip else "not clipped"
            for kind, bx in (("tight", b), ("loose", loose), ("very loose", vloose)):
                meth.prev = None
                p = meth.predict([], box=bx, use_prev=False)
                rows.setdefault("%s box alone, %s" % (kind, cl), {}).setdefault(name, []).append(E.dice(p, gt))
                if clip:
                    rows.setdefault("%s box alone, tightened once, clipped" % kind, {}) \
                        .setdefault(name, []).append(E.dice(tightened(meth, bx, p), gt))
                if kind == "very loose":
                    continue
                for fed in (True, False):
                    meth.prev = None
                    meth.predict([(u, v, True)], use_prev=False)
                    p = meth.predict([(u, v, True)], box=bx, use_prev=fed)
                    key = "%s box, %s, %s" % (kind, "fed back" if fed else "not fed back", "clipped" if clip else "not clipped")
                    rows.setdefault(key, {}).setdefault(name, []).append(E.dice(p, gt))
    out = {"checkpoint": ck, "split": split, "rows": {k: {s: float(np.mean(x)) for s, x in d.items()} for k, d in rows.items()}}
    for k, d in out["rows"].items():
        d["mean of sets"] = float(np.mean(list(d.values())))
        print("%-42s %.3f   " % (k, d["mean of sets"]) + "  ".join("%s %.3f" % (s[:18], x) for s, x in d.items() if s != "mean of sets"))
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as fo:
            json.dump(out, fo, indent=1)


if __name__ == "__main__":
    main()
