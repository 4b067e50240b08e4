"""The whole protocol (1 click, 3 clicks, box, NoC@85) on VALIDATION items for a candidate-ranking rule: the
items of the held-out real sources that evaluate.py's test picks leave out, and new synthetic items (seed 4242).
Usage: val_ranking.py CKPT STABILITY_WEIGHT [ZOOM_POLICY_JSON]   (REPORT.md, "which candidate a click gets")"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import atlas, load as L  # noqa: E402


def val(fn, n_test=15, n_val=40):
    items = fn(10**9)
    test = set(np.linspace(0, len(items) - 1, n_test).astype(int).tolist())
    rest = [i for i in range(len(items)) if i not in test]
    sel = np.linspace(0, len(rest) - 1, min(n_val, len(rest))).astype(int)
    return [items[rest[i]] for i in sel]


def synth_val():
    rng = np.random.default_rng(4242)
    out = []
    for fn, name, idx in ((E.synth.dermoscopy, "synthetic dermoscopy", [0]), (E.synth.fundus, "synthetic fundus", [0, 1]),
                          (E.synth.ultrasound, "synthetic ultrasound", [0, 1]), (E.synth.abdomen_ct, "synthetic abdominal CT", [0, 1, 2, 3, 4, 5, 6])):
        its = []
        for _ in range(8):
            img, sp, win, masks = fn(rng)
            for i in idx:
                if i < len(masks) and masks[i].sum() >= 40:
                    its.append((name, img.astype(np.float32), sp, win, masks[i]))
        out += E._pick(its, 8)
    return out


def validation_items():
    """The validation items: real sources minus evaluate.py's test picks, new synthetic items, and the held-out
    anatomy's validation split (when fetched)."""
    sets = val(E.itk_t1, 15, 25) + val(E.nipype_seg, 15, 25) + val(E.invesalius_bone) + synth_val()
    if os.path.exists(atlas.CHIMERA):  # the held-out anatomy's validation items (evaluate.py tests on the others)
        sets += atlas.heldout_brain_items(30, split="val")
    return sets


def main():
    torch.set_num_threads(1)
    m = L.from_checkpoint(sys.argv[1])
    m.eval()
    w = float(sys.argv[2])
    zoom = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    meth = E.ModelSeg(m, zoom, {"stability_weight": w, "stability_offset": 1.0})
    rows = {}
    for it in validation_items():
        rows.setdefault(it[0], []).append(E.run_item(meth, it))
    allm = []
    for s, rs in rows.items():
        v = [np.mean([r[k] for r in rs]) for k in ("click1", "click3", "box", "noc85")]
        allm.append(v)
        print("%-30s n=%2d  %.3f %.3f %.3f %.2f" % (s, len(rs), *v))
    a = np.mean(allm, 0)
    print("%-30s       %.3f %.3f %.3f %.2f" % ("MEAN", *a))


if __name__ == "__main__":
    main()
