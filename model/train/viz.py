"""Contact sheet of answers on held-out real items: image (window as the app), reference, 1 click (deepest
point, green dot), tight box. Usage: viz.py CKPT OUT.png [--zoom POLICY_JSON]"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import load as L, prep  # noqa: E402


def tile(g01, m, color, pt=None, box=None):
    rgb = np.repeat(g01[..., None], 3, -1) * 0.8
    rgb[m] = rgb[m] * 0.4 + np.array(color) * 0.6
    if pt is not None:
        r, c = int(pt[1]), int(pt[0])
        rgb[max(0, r - 1):r + 2, max(0, c - 1):c + 2] = (0, 1, 0)
    if box is not None:
        u0, v0, u1, v1 = [int(round(x)) for x in box]
        rgb[v0, u0:u1 + 1] = rgb[v1, u0:u1 + 1] = (1, 1, 0)
        rgb[v0:v1 + 1, u0] = rgb[v0:v1 + 1, u1] = (1, 1, 0)
    return rgb


def main():
    torch.set_num_threads(2)
    argv = sys.argv[1:]
    zoom = json.loads(argv[argv.index("--zoom") + 1]) if "--zoom" in argv else None
    seg = E.ModelSeg(L.from_checkpoint(argv[0]), zoom)
    items = E._pick(E.itk_t1(15), 4) + E._pick(E.nipype_seg(15), 4) + E._pick(E.invesalius_bone(15), 4)
    rows = []
    from skimage.transform import resize
    for name, sl, sp, win, gt in items:
        seg.set_image(sl, sp, win)
        u, v = E.deepest(gt)
        pc = seg.predict([(u, v, True)], use_prev=False)
        seg.prev = None
        box = E.tight_box(gt)
        pb = seg.predict([], box=box, use_prev=False)
        g = prep.window01(sl, win)
        t = [tile(g, gt, (0, 0.6, 1)), tile(g, pc, (1, 0.2, 0.2), (u, v)), tile(g, pb, (1, 0.5, 0), box=box)]
        t = [resize(x, (160, 160), order=0) for x in t]
        rows.append(np.concatenate(t, 1))
    half = (len(rows) + 1) // 2
    a = np.concatenate(rows[:half], 0)
    b = np.concatenate(rows[half:] + [np.zeros_like(rows[0])] * (half - len(rows[half:])), 0)
    from skimage import io
    io.imsave(argv[1], (np.concatenate([a, b], 1) * 255).astype(np.uint8))
    print("wrote", argv[1])


if __name__ == "__main__":
    main()
