"""Diagnostic: on the held-out real sets of evaluate.py, 1 click at the deepest point, Dice of the candidate the
IoU head ranks first (what the app shows) vs the best of the 3 candidates (an upper bound: a perfect ranking).
Usage: candidates.py CKPT [CKPT ...]"""
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import atlas, load as L, model as M  # noqa: E402


def main():
    torch.set_num_threads(2)
    sets = E.itk_t1(15) + E.nipype_seg(15) + E.invesalius_bone(15)
    if os.path.exists(atlas.CHIMERA):
        sets += atlas.heldout_brain_items(30, split="val")  # validation items only: choices are made on these
    for path in sys.argv[1:]:
        ck = torch.load(path, map_location="cpu")
        m = L.from_checkpoint(ck)
        m.eval()
        seg = E.ModelSeg(m)
        res = {}
        for name, sl, sp, win, gt in sets:
            seg.set_image(sl, sp, win)
            u, v = E.deepest(gt)
            masks, scores, _ = seg.candidates([(u, v, True)], use_prev=False)
            d = [E.dice(mk, gt) for mk in masks]
            res.setdefault(name, []).append((d[int(np.argmax(scores))], max(d)))
        for name, r in res.items():
            a = np.mean(r, 0)
            print(f"{path}  {name:30s} ranked {a[0]:.3f}  best of {len(d)} {a[1]:.3f}")


if __name__ == "__main__":
    main()
