"""Checks of the training-side helpers that the GPU recipe depends on (run by scripts/test.d/model-smoke.sh):
the vectorised corrective clicks, live samples, and the packed store round trip. Usage: test_train.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from medsa import live, store, synth  # noqa: E402

L = T.L


def disc(cy, cx, r):
    yy, xx = np.mgrid[:L, :L]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_error_clicks():
    # (pred, target, expected label): a missed part -> positive click in it, a spill -> negative click in it
    cases = [
        (disc(64, 64, 10), disc(64, 64, 30), 1.0),  # under-segmented
        (disc(64, 64, 30), disc(64, 64, 10), 0.0),  # over-segmented
        (disc(40, 40, 12), disc(40, 40, 12), -1.0),  # exact: no click
        (np.zeros((L, L), bool), disc(100, 20, 6), 1.0),  # empty prediction
        (disc(64, 64, 20) | disc(64, 110, 12), disc(64, 64, 20), 0.0),  # a separate false blob
    ]
    pred = torch.from_numpy(np.stack([c[0] for c in cases]))
    tgt = torch.from_numpy(np.stack([c[1] for c in cases]))
    g = torch.Generator().manual_seed(0)
    co, lb = T.error_clicks(pred, tgt, g)
    for i, (p, t, want) in enumerate(cases):
        assert float(lb[i]) == want, (i, float(lb[i]), want)
        if want < 0:
            continue
        r, c = int(co[i, 1] // (T.S / L)), int(co[i, 0] // (T.S / L))
        err = (t & ~p) if want == 1.0 else (p & ~t)
        assert err[r, c], f"case {i}: click ({r},{c}) outside the error region"
        # near the deepest part of the error, not on its edge
        depth = T._erode(torch.from_numpy(err[None].astype(np.float32)))[0].numpy()
        assert depth[r, c] > 0, f"case {i}: click on the error's border"


def test_live_and_sampler():
    rng = np.random.default_rng(0)
    lv = live.Live("synth:dermoscopy:1,synth:abdomen_ct:1")
    img, wh, m, name = lv.sample(rng)
    assert img.shape == (3, T.S, T.S) and img.dtype == np.uint8 and m.shape == (L, L) and m.any(), name
    assert name in ("synth:dermoscopy", "synth:abdomen_ct")
    samp = T.Sampler(None, rng, live=lv)
    b = T.make_batch(samp, None, 3, rng, 0.0)
    assert b["imgs"].shape == (3, 3, T.S, T.S) and b["co"].shape[0] == 3 and b["tg"].any((1, 2)).all()
    x = T.norm_batch(b["imgs"], b["wh"], b["gamma"])
    for i, (w, h) in enumerate(b["wh"]):  # zero outside the valid region, as the engine pads
        assert float(x[i, :, h:, :].abs().sum()) == 0 and float(x[i, :, :, w:].abs().sum()) == 0
    try:
        live.Live("synth:nonsense:1")
    except ValueError:
        pass
    else:
        raise AssertionError("unknown live source accepted")


def test_pack_roundtrip():
    rng = np.random.default_rng(1)
    st = store.Store()
    while len(st) < 4:
        st.add(*synth.dermoscopy(rng), "real:derm")  # RGB
        st.add(*synth.abdomen_ct(rng), "synth:abdomen_ct")  # grey
    with tempfile.TemporaryDirectory() as d:
        st.save(os.path.join(d, "s.npz"))
        for extra, keep in (([], None), (["--real-only"], "real")):
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "pack_data.py"),
                            os.path.join(d, "s.npz"), os.path.join(d, "p.npz.xz")] + extra, check=True,
                           stdout=subprocess.DEVNULL)
            a, b = store.load([os.path.join(d, "s.npz")]), store.load([os.path.join(d, "p.npz.xz")])
            if keep:
                sel = np.array([str(s).startswith(keep) for s in a["src"]])
                a = {k: v[sel] for k, v in a.items()}
            for k in a:
                assert (a[k] == b[k]).all(), k


if __name__ == "__main__":
    for f in (test_error_clicks, test_live_and_sampler, test_pack_roundtrip):
        f()
        print("ok", f.__name__)
