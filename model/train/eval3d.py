"""SD-Trans check on held-out CT slices (InVesalius z >= 80, bone components): the same prompts decoded from
per-slice 2D embeddings (encoder) and from depth-chunk embeddings (encoder3d, D=8).
Usage: eval3d.py CKPT [OUT.json]"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import load as L, model as M, prep, sources  # noqa: E402


def main():
    torch.set_num_threads(2)
    ck = torch.load(sys.argv[1], map_location="cpu")
    m = L.from_checkpoint(ck)
    vol, sp, masks = sources.inv3()
    bone = [mk for _, (mk, r) in masks.items() if r[0] > 100][0]
    win = (400.0, 1800.0)
    res = {"2d": {"click1": [], "box": []}, "3d": {"click1": [], "box": []}}
    D = 8
    for z0 in range(80, vol.shape[0] - D + 1, D):
        imgs = []
        for z in range(z0, z0 + D):
            img, (Wp, Hp) = prep.preprocess(vol[z], sp[:2], win)
            imgs.append(img)
        x = torch.from_numpy(np.stack(imgs))
        with torch.no_grad():
            e2 = m.image_encoder(x, depth=False)
            e3 = m.image_encoder(x, depth=True)
        for i, z in enumerate(range(z0, z0 + D)):
            comps = E.comps(bone[z], 80, 2)
            for gt in comps:
                for kind, emb in (("2d", e2), ("3d", e3)):
                    s = E.ModelSeg(m)
                    s.set_embedding(emb[i:i + 1], vol[z].shape[1], vol[z].shape[0], Wp, Hp)
                    u, v = E.deepest(gt)
                    res[kind]["click1"].append(E.dice(s.predict([(u, v, True)], use_prev=False), gt))
                    s.prev = None
                    res[kind]["box"].append(E.dice(s.predict([], box=E.tight_box(gt), use_prev=False), gt))
    out = {k: {kk: float(np.mean(vv)) for kk, vv in v.items()} for k, v in res.items()}
    out["n"] = len(res["2d"]["box"])
    out["embedding_change"] = float((e3 - e2).abs().mean() / e2.abs().mean())
    print(json.dumps(out))
    if len(sys.argv) > 2:
        json.dump(out, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
