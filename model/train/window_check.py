"""Does a mask hinge on the window? For the held-out real items of evaluate.py, 1 click (deepest point) and the
tight box are answered under the default window and under windows the app can produce (width x0.7 / x1.3,
centre -/+15 % of the width); reported: Dice of each answer against the default-window answer (stability) and
against the reference (quality). Usage: window_check.py CKPT OUT.json [--zoom POLICY_JSON]"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import load as L  # noqa: E402

VARIANTS = {"width x0.7": (0.0, 0.7), "width x1.3": (0.0, 1.3), "centre -15%": (-0.15, 1.0), "centre +15%": (0.15, 1.0)}


def main():
    torch.set_num_threads(2)
    argv = sys.argv[1:]
    zoom = json.loads(argv[argv.index("--zoom") + 1]) if "--zoom" in argv else None
    m = L.from_checkpoint(argv[0])
    seg = E.ModelSeg(m, zoom)
    items = [it for it in E.itk_t1(15) + E.nipype_seg(15) + E.invesalius_bone(15)]
    res = {k: {"click_stab": [], "box_stab": [], "click_dice": [], "box_dice": []} for k in ["default"] + list(VARIANTS)}
    for name, sl, sp, win, gt in items:
        u, v = E.deepest(gt)
        box = E.tight_box(gt)
        base = None
        for k in ["default"] + list(VARIANTS):
            dc, fw = (0.0, 1.0) if k == "default" else VARIANTS[k]
            w = (win[0] + dc * win[1], win[1] * fw)
            seg.set_image(sl, sp, w)
            pc = seg.predict([(u, v, True)], use_prev=False)
            seg.prev = None
            pb = seg.predict([], box=box, use_prev=False)
            if base is None:
                base = (pc, pb)
            r = res[k]
            r["click_stab"].append(E.dice(pc, base[0]))
            r["box_stab"].append(E.dice(pb, base[1]))
            r["click_dice"].append(E.dice(pc, gt))
            r["box_dice"].append(E.dice(pb, gt))
    out = {"checkpoint": argv[0], "n": len(items),
           "variants": {k: {kk: float(np.mean(vv)) for kk, vv in r.items()} for k, r in res.items()}}
    json.dump(out, open(argv[1], "w"), indent=1)
    for k, r in out["variants"].items():
        print(f"{k:12s} stability click {r['click_stab']:.3f} box {r['box_stab']:.3f} | Dice click {r['click_dice']:.3f} "
              f"box {r['box_dice']:.3f}")


if __name__ == "__main__":
    main()
