"""Train Med-SA. Phase 'base': the base model (encoder, prompt encoder, decoder; adapters stay at zero) on generic
data. Phase 'adapt': base frozen; encoder adapters (Space/MLP/Depth), SD-Trans depth embeddings, HyP-Adpt and
decoder adapters (+ optional extra prefixes) on medical data, 2D samples and 3D chunks.

Usage: train.py --phase base --data a.npz [b.npz] --minutes 40 --out runs/base [--init ckpt.pt]
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch
from scipy import ndimage as ndi
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import model as M, prompts as P, store  # noqa: E402

S, L = 256, 128


def norm_batch(imgs_u8, wh, rng, augment):
    """uint8 [B,3,S,S] canvases -> normalised float tensor, zero outside the valid W'xH' region."""
    x = imgs_u8.astype(np.float32) / 255.0
    if augment:
        for i in range(len(x)):
            if rng.random() < 0.5:
                x[i] = x[i] ** rng.uniform(0.7, 1.4)
    x = (x - 0.5) / 0.25
    for i, (w, h) in enumerate(wh):
        x[i, :, h:, :] = 0
        x[i, :, :, w:] = 0
    return torch.from_numpy(x)


def flip(img, m, wh, rng):
    w, h = int(wh[0]), int(wh[1])
    if w % 2 == 0 and rng.random() < 0.5:
        img[:, :, :w] = img[:, :, :w][:, :, ::-1]
        m[:, :w // 2] = m[:, :w // 2][:, ::-1]
    if h % 2 == 0 and rng.random() < 0.5:
        img[:, :h, :] = img[:, :h, :][:, ::-1, :]
        m[:h // 2, :] = m[:h // 2, :][::-1, :]
    return img, m


def seg_loss(logits, target):
    """logits [B,M,L,L], target [B,L,L] -> per-(sample, output) BCE + Dice [B,M]."""
    t = target[:, None].expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean((2, 3))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * t).sum((2, 3)) + 1) / (p.sum((2, 3)) + t.sum((2, 3)) + 1)
    return bce + dice


def iou_of(logits, target):
    pr = logits > 0
    t = target[:, None] > 0.5
    inter = (pr & t).sum((2, 3)).float()
    uni = (pr | t).sum((2, 3)).float()
    return inter / uni.clamp(min=1)


class Sampler:
    def __init__(self, data, rng, synth_weight=1.0):
        self.d = data
        self.rng = rng
        self.n = len(data["imgs"])
        w = np.array([synth_weight if str(x).startswith("synth") else 1.0 for x in data["src"]])
        self.p = w / w.sum()

    def batch(self, B):
        idx = self.rng.choice(self.n, B, p=self.p)
        imgs = self.d["imgs"][idx].copy()
        wh = self.d["wh"][idx]
        tg = []
        for j, i in enumerate(idx):
            k = self.rng.integers(0, max(1, int(self.d["nm"][i])))
            m = store.unpack_masks(self.d["masks"][i][k:k + 1], 1)[0].copy()
            imgs[j], m = flip(imgs[j], m, wh[j], self.rng)
            tg.append(m)
        return imgs, wh, np.stack(tg)


class ChunkSampler:
    """3D chunks: D consecutive slices, one 3D target; per-slice masks (may be empty)."""

    def __init__(self, data, D, rng):
        self.d, self.D, self.rng = data, D, rng
        self.n = len(data["imgs"]) // D

    def batch(self):
        c = self.rng.integers(0, self.n)
        sl = slice(c * self.D, (c + 1) * self.D)
        imgs = self.d["imgs"][sl].copy()
        wh = self.d["wh"][sl]
        m = store.unpack_masks(self.d["masks"][sl][:, :1], 1)[:, 0]
        return imgs, wh, m


def make_prompts(tg, wh, mode, rng, n_clicks):
    """Initial prompts per sample -> list of (points, labels) lists (without padding)."""
    out = []
    for m, (w, h) in zip(tg, wh):
        pts, labs = [], []
        if mode == "box":
            bm = "tight" if rng.random() < 0.6 else "loose"
            b = P.box(m, rng, bm, (w, h))
            pts += b
            labs += [2.0, 3.0]
        else:
            r, c = P.random_interior(m, rng)
            pts.append(P.cell_to_xy(r, c, rng))
            labs.append(1.0)
            for _ in range(n_clicks - 1):
                if rng.random() < 0.7:
                    r, c = P.random_interior(m, rng, 0.0)
                    pts.append(P.cell_to_xy(r, c, rng))
                    labs.append(1.0)
                else:  # a negative click near the object
                    dil = ndi.binary_dilation(m, iterations=6) & ~m
                    dil[(h + 1) // 2:, :] = False
                    dil[:, (w + 1) // 2:] = False
                    cand = np.argwhere(dil)
                    if len(cand):
                        r, c = cand[rng.integers(len(cand))]
                        pts.append(P.cell_to_xy(r, c, rng))
                        labs.append(0.0)
        out.append((pts, labs))
    return out


def to_tensors(prompts, has_box):
    B = len(prompts)
    N = max(len(p[0]) for p in prompts) + (0 if has_box else 1)
    co = np.zeros((B, N, 2), np.float32)
    lb = np.full((B, N), -1.0, np.float32)
    for i, (pts, labs) in enumerate(prompts):
        k = len(pts)
        co[i, :k] = pts
        lb[i, :k] = labs
    return torch.from_numpy(co), torch.from_numpy(lb)


def train_step(model, imgs, wh, tg, rng, depth=False, valid=None):
    B = len(imgs)
    x = norm_batch(imgs, wh, rng, True)
    target = torch.from_numpy(tg.astype(np.float32))
    emb = model.image_encoder(x, depth=depth)
    u = rng.random()
    mode, n0 = ("click", 1) if u < 0.45 else (("box", 0) if u < 0.8 else ("click", int(rng.integers(2, 4))))
    if valid is None:
        valid = np.ones(B, bool)
    tg_np = tg.astype(bool)
    safe = [t if v else np.pad(np.ones((2, 2), bool), ((0, L - 2), (0, L - 2))) for t, v in zip(tg_np, valid)]
    prompts = make_prompts(safe, wh, mode, rng, n0)
    has_box = mode == "box"
    n_iter = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    mask_in = torch.zeros(B, 1, L, L)
    has_mask = torch.zeros(B)
    w = torch.from_numpy(valid.astype(np.float32))
    total = 0.0
    stats = {}
    for it in range(n_iter):
        co, lb = to_tensors(prompts, has_box)
        logits, iou_pred = model.decode(emb, co, lb, mask_in, has_mask)
        per = seg_loss(logits, target)  # [B,M]
        single = (not has_box) and sum(1 for l in prompts[0][1] if l >= 0) == 1 and it == 0
        if single:
            sl = per.min(dim=1).values
        else:
            sl = per.mean(dim=1)
        true_iou = iou_of(logits.detach(), target)
        il = ((iou_pred - true_iou) ** 2).mean(dim=1)
        loss = ((sl + il) * w).sum() / w.sum().clamp(min=1)
        total = total + loss
        if it == 0:
            stats["loss0"] = float(loss)
            stats["iou0"] = float((true_iou.max(dim=1).values * w).sum() / w.sum().clamp(min=1))
        if it + 1 < n_iter:
            with torch.no_grad():
                best = torch.argmax(true_iou if single else iou_pred, dim=1)
                prev = logits.detach()[torch.arange(B), best]
                feed = torch.from_numpy((rng.random(B) < 0.8).astype(np.float32))
                mask_in = prev[:, None] * feed.view(B, 1, 1, 1)
                has_mask = feed
                for i in range(B):
                    e = P.error_click(prev[i].numpy() > 0, safe[i], rng)
                    if e is not None:
                        prompts[i][0].append((e[0], e[1]))
                        prompts[i][1].append(e[2])
                    else:
                        prompts[i][0].append(prompts[i][0][-1])
                        prompts[i][1].append(prompts[i][1][-1] if prompts[i][1][-1] in (0.0, 1.0) else 1.0)
    stats["loss"] = float(total) / n_iter
    return total / n_iter, stats


@torch.no_grad()
def quick_eval(model, data, idx):
    """1-click (deepest point) and tight-box Dice of the top-IoU candidate on fixed val samples."""
    model.eval()
    res = {"click": [], "box": []}
    for i in idx:
        img = data["imgs"][i:i + 1]
        wh = data["wh"][i:i + 1]
        m = store.unpack_masks(data["masks"][i][:1], 1)[0]
        emb = model.image_encoder(norm_batch(img, wh, None, False))
        r, c, _ = P.deepest(m)
        for kind, pts, labs in (("click", [P.cell_to_xy(r, c), (0.0, 0.0)], [1.0, -1.0]),
                                ("box", P.box(m), [2.0, 3.0])):
            co = torch.tensor([pts], dtype=torch.float32)
            lb = torch.tensor([labs], dtype=torch.float32)
            lg, iou = model.decode(emb, co, lb, torch.zeros(1, 1, L, L), torch.zeros(1))
            pr = lg[0, int(torch.argmax(iou[0]))].numpy() > 0
            res[kind].append(2 * (pr & m).sum() / max(1, pr.sum() + m.sum()))
    model.train()
    return {k: float(np.mean(v)) for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["base", "adapt"], required=True)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--chunks", default="")
    ap.add_argument("--chunk-prob", type=float, default=0.2)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--init", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra", default="", help="comma-separated base prefixes also trained in phase adapt")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default="", help="JSON of Config overrides (phase base only)")
    ap.add_argument("--synth-weight", type=float, default=1.0, help="sampling weight of synthetic vs real samples")
    ap.add_argument("--exclude-src", default="CT:derived/", help="drop samples whose source starts with this")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    if a.init:
        ck = torch.load(a.init, map_location="cpu")
        cfg = M.Config.from_dict(ck["config"])
        model = M.MedSA(cfg)
        model.load_state_dict(ck["model"])
    else:
        cfg = M.Config(**json.loads(a.config)) if a.config else M.Config()
        model = M.MedSA(cfg)
    extra = [e for e in a.extra.split(",") if e]
    M.set_phase(model, a.phase, extra)
    tot, tr = M.count_params(model)
    print(f"params total {tot} trainable {tr}", flush=True)
    data = store.load(a.data)
    if a.exclude_src:
        keep = np.array([not str(x).startswith(a.exclude_src) for x in data["src"]])
        data = {k: v[keep] for k, v in data.items()}
        print(f"excluded {int((~keep).sum())} samples with source {a.exclude_src}", flush=True)
    n = len(data["imgs"])
    perm = np.random.default_rng(123).permutation(n)
    val_idx = perm[:min(48, max(1, n // 5))]
    train_mask = np.ones(n, bool)
    train_mask[val_idx] = False
    tdata = {k: v[train_mask] for k, v in data.items()}
    samp = Sampler(tdata, rng, a.synth_weight)
    chunks = None
    if a.chunks:
        cd = store.load([a.chunks])
        chunks = ChunkSampler(cd, 8, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    t0 = time.time()
    budget = a.minutes * 60
    log = open(os.path.join(a.out, "log.jsonl"), "a")
    step = 0
    last_save = t0

    def save(tag="ckpt"):
        torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "phase": a.phase, "step": step,
                    "params": {"total": tot, "trainable": tr, "extra": extra}},
                   os.path.join(a.out, tag + ".pt"))

    model.train()
    while True:
        el = time.time() - t0
        if el > budget or (a.max_steps and step >= a.max_steps):
            break
        frac = el / budget
        lr = a.lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if chunks is not None and rng.random() < a.chunk_prob:
            imgs, wh, tg = chunks.batch()
            valid = tg.reshape(len(tg), -1).sum(1) >= 4
            if valid.sum() == 0:
                continue
            loss, st = train_step(model, imgs, wh, tg, rng, depth=True, valid=valid)
            st["chunk"] = 1
        else:
            imgs, wh, tg = samp.batch(a.batch)
            loss, st = train_step(model, imgs, wh, tg, rng)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        st.update(step=step, t=round(time.time() - t0, 1), lr=lr)
        if step % a.eval_every == 0:
            st["val"] = quick_eval(model, data, val_idx)
            print(json.dumps(st), flush=True)
        log.write(json.dumps(st) + "\n")
        log.flush()
        if time.time() - last_save > 300:
            save()
            last_save = time.time()
    st = {"step": step, "t": round(time.time() - t0, 1), "val": quick_eval(model, data, val_idx), "final": 1}
    log.write(json.dumps(st) + "\n")
    print(json.dumps(st), flush=True)
    save()


if __name__ == "__main__":
    main()
