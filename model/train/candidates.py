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
from medsa import model as M, prep  # noqa: E402


def main():
    torch.set_num_threads(2)
    sets = E.itk_t1(15) + E.nipype_seg(15) + E.invesalius_bone(15)
    for path in sys.argv[1:]:
        ck = torch.load(path, map_location="cpu")
        m = M.MedSA(M.Config.from_dict(ck["config"]))
        m.load_state_dict(ck["model"])
        m.eval()
        seg = E.ModelSeg(m)
        L = m.cfg.low_res
        res = {}
        for name, sl, sp, win, gt in sets:
            seg.set_image(sl, sp, win)
            u, v = E.deepest(gt)
            pts = [prep.to_model_coords(u, v, seg.W, seg.H, seg.Wp, seg.Hp), (0.0, 0.0)]
            with torch.no_grad():
                low, sc = m.decode(seg.emb, torch.tensor([pts]), torch.tensor([[1.0, -1.0]]),
                                   torch.zeros(1, 1, L, L), torch.zeros(1))
            d = [E.dice(prep.postprocess_masks(low[:, b:b + 1].numpy(), seg.W, seg.H, seg.Wp, seg.Hp,
                                               m.cfg.img_size)[0, 0].numpy() > 0, gt) for b in range(low.shape[1])]
            res.setdefault(name, []).append((d[int(torch.argmax(sc[0]))], max(d)))
        for name, r in res.items():
            a = np.mean(r, 0)
            print(f"{path}  {name:30s} ranked {a[0]:.3f}  best of {low.shape[1]} {a[1]:.3f}")


if __name__ == "__main__":
    main()
