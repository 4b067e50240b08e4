"""The procedural data engine (issue 10): whole training batches generated with tensor ops on the training
device (CPU here, the GPU when lent), no per-sample Python in the loop.

A batch is (image [B,3,S,S] normalised as the manifest says, target [B,S,S] float {0,1}, valid [B,S,S] the
canvas region). Each sample is one of:
- a procedural label map: SynthMorph-style argmax of smooth noise at a random scale, optionally inside a
  warped "body" (so whole-organ/whole-brain targets exist), with layered ellipses (nested and touching shapes)
  and thin bands (iso-contours of noise: vessels, cortex-like ribbons), deformed by a smooth random warp;
- a label map from a real unlabelled slice: random multi-threshold partition of the blurred slice (the SynthSeg
  authors found automatic labels enough), rendered either with the real intensities or re-rendered
  SynthSeg-style with random ones.
Appearance: per-label intensity (a share of deliberately low-contrast neighbours), texture, bias field, blur and
random resolution, Gaussian or Rician noise, gamma, inversion, colour for the 2D modalities, and a random
window of +-30 % around the full range (the app's presets, percentiles or the user's W/L).
Targets: the connected component under a random seed (flood fill by constrained dilation), sometimes the union
with an adjacent label (the 1-click ambiguity the 3 candidates cover) or the whole body; small structures are
oversampled by choosing the label first, uniformly among those present. Part of the canvas may be padding
(longest-side padding of non-square slices), as the engine feeds it.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.25


class Engine:
    def __init__(self, S=128, device="cpu", seed=0, real=None, real_frac=0.35, labelled=None, lab_frac=0.0,
                 lab_zoom=0.45):
        """real: optional float tensor [N,S,S] of real slices in [0,1] (grey) used for partitions/appearance.
        labelled: optional (images [N,S,S] in [0,1], labels [N,S,S] int) of real labelled anatomy (atlas.py);
        lab_frac of each batch is drawn from it. lab_zoom: the smallest crop of a labelled slice (a fraction of
        the canvas); below 0.45 the crop side is drawn log-uniformly, so structures are also seen at the scale
        of the engine's box crops (2 x the box, a caudate magnified ~5x)."""
        self.S = S
        self.lab_zoom = lab_zoom
        self.lab_img = labelled[0].to(device).float() if labelled is not None else None
        self.lab_lab = labelled[1].to(device).long() if labelled is not None else None
        self.lab_frac = lab_frac if labelled is not None else 0.0
        self.dev = torch.device(device)
        self.g = torch.Generator(device=self.dev)
        self.g.manual_seed(seed)
        self.real = real.to(self.dev) if real is not None else None
        self.real_frac = real_frac if real is not None else 0.0
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, S, device=self.dev), torch.linspace(-1, 1, S, device=self.dev),
                                indexing="ij")
        self.yy, self.xx = yy, xx

    # ------------------------------------------------------------------------------------------ random helpers
    def u(self, *shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=self.g, device=self.dev)

    def n(self, *shape):
        return torch.randn(*shape, generator=self.g, device=self.dev)

    def smooth(self, B, C, cells):
        """Smooth noise [B,C,S,S]: Gaussian noise on a cells x cells grid, bicubic up (one scale per batch)."""
        z = self.n(B, C, cells, cells)
        return F.interpolate(z, size=(self.S, self.S), mode="bicubic", align_corners=False)

    def smooth_multi(self, B, C, lo=2, hi=24):
        """Smooth noise with a per-sample scale: mix of three octaves with random weights."""
        out = 0
        for cells in (max(2, lo), int(math.sqrt(lo * hi)), hi):
            w = self.u(B, 1, 1, 1)
            out = out + w * self.smooth(B, C, cells)
        return out

    def blur(self, x, sigma):
        """Per-sample Gaussian blur of x [B,C,H,W], sigma [B] in px (0 = none)."""
        B, C, H, W = x.shape
        r = 4
        t = torch.arange(-r, r + 1, device=self.dev, dtype=torch.float32)
        k = torch.exp(-0.5 * (t.view(1, -1) / sigma.clamp(min=0.05).view(-1, 1)) ** 2)
        k = k / k.sum(1, keepdim=True)  # [B, 2r+1]
        k = k.repeat_interleave(C, 0)
        y = x.reshape(1, B * C, H, W)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(B * C, 1, 1, -1), groups=B * C)
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(B * C, 1, -1, 1), groups=B * C)
        return y.view(B, C, H, W)

    def warp(self, x, amp, cells=6, mode="nearest"):
        """Smooth random deformation of x [B,C,S,S] with amplitude amp [B] (fraction of the half-size)."""
        B = x.shape[0]
        d = self.smooth(B, 2, cells) * amp.view(B, 1, 1, 1)
        grid = torch.stack([self.xx, self.yy], -1)[None] + d.permute(0, 2, 3, 1)
        return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)

    # ------------------------------------------------------------------------------------------ label maps
    def procedural_labels(self, B, K=10):
        """int64 [B,S,S] labels in 0..K+6 and a body mask; 0 is background when a body is drawn."""
        S = self.S
        f = self.smooth_multi(B, K, 2, int(self.u(1, lo=6, hi=20)))
        # per-sample number of labels: drop channels
        keep = self.u(B, K, 1, 1) < self.u(B, 1, 1, 1, lo=0.3, hi=1.0)
        keep[:, 0] = True
        f = torch.where(keep, f, torch.full_like(f, -1e4))
        lab = f.argmax(1) + 1  # 1..K
        # layered ellipses (nested / touching), labels K+1..K+4
        nE = 4
        cx, cy = self.u(B, nE, lo=-0.8, hi=0.8), self.u(B, nE, lo=-0.8, hi=0.8)
        ra, rb = self.u(B, nE, lo=0.04, hi=0.45), self.u(B, nE, lo=0.04, hi=0.45)
        th = self.u(B, nE, lo=0, hi=math.pi)
        wob = self.smooth(B, nE, 5) * self.u(B, nE, 1, 1, lo=0.0, hi=0.3)
        on = self.u(B, nE) < 0.45
        for e in range(nE):
            X = self.xx[None] - cx[:, e].view(B, 1, 1)
            Y = self.yy[None] - cy[:, e].view(B, 1, 1)
            c, s = torch.cos(th[:, e]).view(B, 1, 1), torch.sin(th[:, e]).view(B, 1, 1)
            q = ((X * c + Y * s) / ra[:, e].view(B, 1, 1)) ** 2 + ((-X * s + Y * c) / rb[:, e].view(B, 1, 1)) ** 2
            m = (q + wob[:, e] < 1.0) & on[:, e].view(B, 1, 1)
            lab = torch.where(m, torch.full_like(lab, K + 1 + e), lab)
        # thin bands: iso-contours of smooth noise (vessels, ribbons), label K+5
        band = self.smooth(B, 1, int(self.u(1, lo=3, hi=9)))[:, 0]
        width = self.u(B, 1, 1, lo=0.02, hi=0.12)
        on = (self.u(B, 1, 1) < 0.3)
        lab = torch.where((band.abs() < width) & on, torch.full_like(lab, K + 5), lab)
        # warp everything
        lab = self.warp(lab[:, None].float(), self.u(B, lo=0.0, hi=0.12))[:, 0].long()
        # body: a warped ellipse; outside = 0
        bx = self.u(B, 1, 1, lo=0.5, hi=1.0)
        by = self.u(B, 1, 1, lo=0.5, hi=1.0)
        q = (self.xx[None] / bx) ** 2 + (self.yy[None] / by) ** 2 + 0.3 * self.smooth(B, 1, 4)[:, 0]
        has_body = self.u(B, 1, 1) < 0.5
        body = (q < 1.0) | ~has_body
        lab = torch.where(body, lab, torch.zeros_like(lab))
        return lab, body & has_body

    def real_labels(self, B):
        """Labels from random multi-threshold partitions of real slices; returns (labels, the real images)."""
        N = self.real.shape[0]
        idx = torch.randint(0, N, (B,), generator=self.g, device=self.dev)
        img = self.real[idx].float()[:, None]
        # random flips / 90 degree turns
        if self.u(1).item() < 0.5:
            img = img.flip(-1)
        if self.u(1).item() < 0.3:
            img = img.transpose(-1, -2)
        img = self.warp(img, self.u(B, lo=0.0, hi=0.06), mode="bilinear")
        sm = self.blur(img, self.u(B, lo=0.5, hi=2.0))[:, 0]
        k = int(self.u(1, lo=2, hi=6).item())
        qs = torch.sort(self.u(B, k, lo=0.05, hi=0.95), 1).values
        flat = sm.flatten(1)
        srt = torch.sort(flat[:, ::5], 1).values
        thr = srt.gather(1, (qs * (srt.shape[1] - 1)).long())  # per-sample quantiles [B,k]
        lab = (sm[:, None] > thr.view(B, k, 1, 1)).sum(1) + 1
        return lab, img[:, 0]

    def labelled_samples(self, B):
        """Real labelled slices under a random zoom (a crop of lab_zoom-100 % of the canvas, as the engine's box crops
        zoom), rotation, flip and a smooth warp, shared by image and labels. Returns (labels, body = labelled
        region, the real images)."""
        N = self.lab_img.shape[0]
        idx = torch.randint(0, N, (B,), generator=self.g, device=self.dev)
        img = self.lab_img[idx][:, None]
        lab = self.lab_lab[idx][:, None].float()
        if self.lab_zoom >= 0.45:
            sc = self.u(B, lo=self.lab_zoom, hi=1.0)
        else:
            sc = torch.exp(self.u(B, lo=math.log(self.lab_zoom), hi=0.0))
        th = self.u(B, lo=-0.2, hi=0.2)
        # the crop's centre lies over the labelled region: a random labelled pixel, pulled toward the middle
        ctr = self.pick_pixel(lab[:, 0] > 0).flatten(1).float().argmax(1)
        cy = (torch.div(ctr, self.S, rounding_mode="floor") / (self.S - 1) * 2 - 1) * (1 - sc)
        cx = ((ctr % self.S) / (self.S - 1) * 2 - 1) * (1 - sc)
        flip = torch.where(self.u(B) < 0.5, -1.0, 1.0)
        c, s_ = torch.cos(th) * sc, torch.sin(th) * sc
        theta = torch.stack([torch.stack([c * flip, -s_, cx], 1), torch.stack([s_ * flip, c, cy], 1)], 1)
        grid = F.affine_grid(theta, (B, 1, self.S, self.S), align_corners=False)
        grid = grid + self.smooth(B, 2, 6).permute(0, 2, 3, 1) * self.u(B, 1, 1, 1, lo=0.0, hi=0.03)
        img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
        lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].long()
        return lab, lab > 0, img

    # ------------------------------------------------------------------------------------------ appearance
    def render(self, lab, body, K, shared=False):
        """Grey image in about [0,1] from labels: per-label means (some low contrast), texture, bias.
        shared: one appearance for the whole batch (the slices of a 3D chunk)."""
        B, S, _ = lab.shape
        NL = K + 7
        b = 1 if shared else B
        means = self.u(b, NL)
        low = self.u(b, 1) < 0.2  # low-contrast: all labels close to one value
        base = self.u(b, 1)
        means = torch.where(low, base + (means - 0.5) * self.u(b, 1, lo=0.08, hi=0.3), means)
        means[:, 0] = torch.where(self.u(b) < 0.7, self.u(b, lo=0.0, hi=0.15), means[:, 0])  # dark surround
        tex_amp = self.u(b, NL) * self.u(b, 1, lo=0.0, hi=0.15)
        means, tex_amp = means.expand(B, -1), tex_amp.expand(B, -1)
        img = means.gather(1, lab.flatten(1)).view(B, S, S)
        tex = self.smooth(B, 1, int(self.u(1, lo=8, hi=40)))[:, 0]
        img = img + tex_amp.gather(1, lab.flatten(1)).view(B, S, S) * tex
        return img

    def colourise(self, lab, grey, K):
        """3-channel version for the 2D photographic modalities: per-label RGB + the grey shading."""
        B, S, _ = lab.shape
        NL = K + 7
        rgb = self.u(B, NL, 3)
        col = rgb.gather(1, lab.flatten(1)[..., None].expand(-1, -1, 3)).view(B, S, S, 3).permute(0, 3, 1, 2)
        return 0.5 * col + 0.5 * grey[:, None]

    def degrade(self, x):
        """x [B,C,S,S] ~[0,1] -> blur, low resolution, bias field, noise, gamma, inversion, random window."""
        B, C, S, _ = x.shape
        x = self.blur(x, self.u(B, lo=0.0, hi=1.6) * (self.u(B) < 0.7))
        # random lower resolution (one factor per batch)
        f = float(self.u(1, lo=1.0, hi=2.5))
        if f > 1.2:
            lo = F.interpolate(x, scale_factor=1.0 / f, mode="bilinear", align_corners=False)
            x = F.interpolate(lo, size=(S, S), mode="bilinear", align_corners=False)
        bias = torch.exp(self.smooth(B, 1, 3) * self.u(B, 1, 1, 1, lo=0.0, hi=0.3))
        x = x * bias
        sig = self.u(B, 1, 1, 1, lo=0.0, hi=0.06)
        rician = self.u(B, 1, 1, 1) < 0.3
        n1 = self.n(B, C, S, S) * sig
        n2 = self.n(B, C, S, S) * sig
        x = torch.where(rician, torch.sqrt((x + n1) ** 2 + n2 ** 2), x + n1)
        x = x.clamp(0, 1.5)
        gam = torch.exp(self.u(B, 1, 1, 1, lo=-0.5, hi=0.5))
        x = (x / 1.5).clamp(min=1e-6) ** gam * 1.5
        inv = self.u(B, 1, 1, 1) < 0.15
        x = torch.where(inv, 1.5 - x, x)
        # window: full range (0.5 / 99.5 percentile as the app does) widened or narrowed by up to 30 %
        flat = x.flatten(1)[:, ::7]
        q = torch.quantile(flat, torch.tensor([0.005, 0.995], device=self.dev), dim=1).T  # [B,2]
        c = q.mean(1) + (q[:, 1] - q[:, 0]) * self.u(B, lo=-0.15, hi=0.15)
        w = (q[:, 1] - q[:, 0]).clamp(min=1e-3) * self.u(B, lo=0.7, hi=1.3)
        x = ((x - (c - w / 2).view(B, 1, 1, 1)) / w.view(B, 1, 1, 1)).clamp(0, 1)
        return x

    # ------------------------------------------------------------------------------------------ targets
    @staticmethod
    def dilate(m):
        """3x3 (8-connected) binary dilation of bool [B,H,W] by shifted ORs (max_pool2d is ~50x slower here)."""
        h = m.clone()
        h[:, :, 1:] |= m[:, :, :-1]
        h[:, :, :-1] |= m[:, :, 1:]
        v = h.clone()
        v[:, 1:] |= h[:, :-1]
        v[:, :-1] |= h[:, 1:]
        return v

    def flood(self, seed, region, iters=None):
        """Connected component of `region` [B,S,S] bool containing seed [B,S,S] bool (8-connected)."""
        m = seed & region
        iters = iters or 2 * self.S
        for i in range(iters):
            m2 = self.dilate(m) & region
            if i % 8 == 7 and torch.equal(m2, m):
                break
            m = m2
        return m

    def pick_pixel(self, mask):
        """A random True pixel of each mask [B,S,S] (a pixel anywhere when the mask is empty) -> one-hot."""
        B = mask.shape[0]
        w = mask.flatten(1).float() + 1e-9
        k = torch.multinomial(w, 1, generator=self.g)[:, 0]
        oh = torch.zeros(B, self.S * self.S, dtype=torch.bool, device=self.dev)
        oh[torch.arange(B, device=self.dev), k] = True
        return oh.view(B, self.S, self.S)

    def targets(self, lab, body, valid, n_try=3):
        """Target per sample: connected component under a seed in a label chosen uniformly among those present
        (small structures oversampled), sometimes unioned with an adjacent label or the whole body."""
        B, S, _ = lab.shape
        NL = int(lab.max().item()) + 1
        present = torch.zeros(B, NL, dtype=torch.bool, device=self.dev)  # [B,NL]: labels in the canvas
        present.scatter_(1, lab.flatten(1) * valid.flatten(1), True)
        present[:, 0] &= ~body.flatten(1).any(1)  # background is not a target when a body exists
        best = torch.zeros(B, S, S, dtype=torch.bool, device=self.dev)
        ok = torch.zeros(B, dtype=torch.bool, device=self.dev)
        vsum = valid.flatten(1).sum(1).float()
        for t in range(n_try):
            todo = torch.nonzero(~ok)[:, 0]  # retry only the samples still without a usable target
            if len(todo) == 0:
                break
            lb, vb, bb, pb = lab[todo], valid[todo], body[todo], present[todo]
            n = len(todo)
            l = torch.multinomial(pb.float() + 1e-9, 1, generator=self.g)[:, 0]
            reg = (lb == l.view(n, 1, 1)) & vb
            seed = self.pick_pixel(reg)
            union = torch.nonzero(self.u(n) < 0.15)[:, 0]
            if len(union):
                # a neighbouring label: the label under a random pixel of the ring around the component
                ru, su, lu, vu = reg[union], seed[union], lb[union], vb[union]
                comp = self.flood(su, ru, iters=S // 2)
                ring = self.dilate(self.dilate(self.dilate(comp))) & ~comp & vu
                k = self.pick_pixel(ring).flatten(1).float().argmax(1, keepdim=True)
                nb = lu.flatten(1).gather(1, k)[:, 0]
                reg[union] = ru | ((lu == nb.view(-1, 1, 1)) & vu)
            whole = (self.u(n) < 0.08) & bb.flatten(1).any(1)
            reg = torch.where(whole.view(n, 1, 1), bb & vb, reg)
            comp = self.flood(seed, reg)
            a = comp.flatten(1).sum(1).float()
            good = (a >= 12) & (a <= 0.85 * vsum[todo])
            best[todo] = torch.where(good.view(n, 1, 1), comp, best[todo])
            ok[todo] = good
        # fallback: a disc-like blob of the label map around the image centre
        if not ok.all():
            r = (self.xx ** 2 + self.yy ** 2 < 0.1)[None] & valid
            best = torch.where(ok.view(B, 1, 1), best, r)
        return best

    # ------------------------------------------------------------------------------------------ batch
    def batch(self, B):
        S = self.S
        nlab = int(round(B * self.lab_frac)) if self.lab_img is not None else 0
        nreal = int(round((B - nlab) * self.real_frac)) if self.real is not None else 0
        nproc = B - nreal - nlab
        K = 10
        labs, bodies, imgs = [], [], []
        if nproc:
            lab, body = self.procedural_labels(nproc, K)
            labs.append(lab)
            bodies.append(body)
            imgs.append(self.render(lab, body, K)[:, None].expand(-1, 3, -1, -1))
        if nreal:
            lab, real = self.real_labels(nreal)
            labs.append(lab)
            bodies.append(torch.zeros_like(lab, dtype=torch.bool))
            synth = self.render(lab, torch.zeros_like(lab, dtype=torch.bool), K)
            use_real = (self.u(nreal, 1, 1) < 0.6)
            g = torch.where(use_real, real, synth)
            imgs.append(g[:, None].expand(-1, 3, -1, -1))
        if nlab:
            lab, body, real = self.labelled_samples(nlab)
            # SynthSeg-style re-rendering for a share: the labels with random intensities, the unlabelled
            # surround (skull, scalp, air) split by thresholds of the real image so it is not one flat blob
            top = int(lab.max().item())
            sm = self.blur(real[:, None], self.u(nlab, lo=0.5, hi=1.5))[:, 0]
            surround = top + 1 + (sm[:, None] > torch.tensor([0.15, 0.4, 0.7], device=self.dev).view(1, 3, 1, 1)).sum(1)
            lab2 = torch.where(lab > 0, lab, surround)
            synth = self.render(lab2, body, top + 4 - 6)
            use_real = self.u(nlab, 1, 1) < 0.55
            labs.append(lab)
            bodies.append(body)
            imgs.append(torch.where(use_real, real, synth)[:, None].expand(-1, 3, -1, -1))
        lab = torch.cat(labs)
        body = torch.cat(bodies)
        x = torch.cat(imgs).contiguous()
        # colour (2D photographic modalities) for a share of the procedural samples
        col = (self.u(B) < 0.2) & (torch.arange(B, device=self.dev) < nproc)
        if col.any():
            c = self.colourise(lab.clamp(max=K + 6), x[:, 0], K)
            x = torch.where(col.view(B, 1, 1, 1), c, x)
        x = self.degrade(x)
        # padding of non-square slices: a valid W' x H' region at the top-left
        valid = torch.ones(B, S, S, dtype=torch.bool, device=self.dev)
        padded = self.u(B) < 0.3
        ext = (self.u(B, lo=0.45, hi=1.0) * S).long()
        horiz = self.u(B) < 0.5
        ar = torch.arange(S, device=self.dev)
        cols = ar.view(1, 1, S) < torch.where(padded & horiz, ext, torch.full_like(ext, S)).view(B, 1, 1)
        rows = ar.view(1, S, 1) < torch.where(padded & ~horiz, ext, torch.full_like(ext, S)).view(B, 1, 1)
        valid = cols & rows
        tgt = self.targets(lab, body, valid)
        x = (x - MEAN) / STD * valid[:, None]
        return x, tgt.float(), valid


    def chunk(self, D):
        """A 3D chunk of D consecutive slices (for SD-Trans): one procedural label map deformed progressively
        from slice to slice, one appearance, one target region followed through the slices (the components
        overlapping the previous slice's). Returns x [D,3,S,S], target [D,S,S], valid [D,S,S]."""
        S = self.S
        K = 10
        lab0, body0 = self.procedural_labels(1, K)
        d = self.smooth(1, 2, 5) * float(self.u(1, lo=0.01, hi=0.04))  # per-slice step of the deformation
        grid0 = torch.stack([self.xx, self.yy], -1)[None]
        t = torch.arange(D, device=self.dev, dtype=torch.float32).view(D, 1, 1, 1) - (D - 1) / 2
        grid = grid0 + t * d.permute(0, 2, 3, 1)
        lab = F.grid_sample(lab0[:, None].float().expand(D, -1, -1, -1), grid, mode="nearest",
                            padding_mode="border", align_corners=True)[:, 0].long()
        body = F.grid_sample(body0[:, None].float().expand(D, -1, -1, -1), grid, mode="nearest",
                             padding_mode="border", align_corners=True)[:, 0] > 0.5
        x = self.render(lab, body, K, shared=True)[:, None].expand(-1, 3, -1, -1).contiguous()
        x = self.degrade(x)
        valid = torch.ones(D, S, S, dtype=torch.bool, device=self.dev)
        mid = D // 2
        tm = self.targets(lab[mid:mid + 1], body[mid:mid + 1], valid[:1])
        lm = lab[mid][tm[0]]
        l = int(lm.flatten()[0].item()) if lm.numel() else 1
        reg = lab == l
        tgt = torch.zeros(D, S, S, dtype=torch.bool, device=self.dev)
        tgt[mid] = tm[0]
        for k in list(range(mid + 1, D)) + list(range(mid - 1, -1, -1)):
            prev = tgt[k - 1] if k > mid else tgt[k + 1]
            tgt[k] = self.flood((prev & reg[k])[None], reg[k][None])[0]
        x = (x - MEAN) / STD
        return x, tgt.float(), valid


def to_canvas(a, sp, S, mode="bilinear"):
    """A slice [H,W] -> [S,S] as the engine feeds the model: resized to its extent in the canvas (longest
    side, physical aspect), top-left, zero padding."""
    from . import prep
    H, W = a.shape
    Wp, Hp = prep.extent(W, H, sp, {**prep.DEFAULT, "input_size": S})
    src = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    c = torch.zeros(S, S)
    c[:Hp, :Wp] = F.interpolate(src, size=(Hp, Wp), mode=mode, **kw)[0, 0]
    return c


def load_real_pool(S, cache_path=None, tiny=False):
    """Real unlabelled training slices in [0,1] at S x S (longest side, top-left, zero pad), never the
    evaluation's: InVesalius head CT z < 72 (axial, coronal, sagittal; several CT windows), the MR volumes of
    build_medical (BraTS-like T2, MNI152, nibabel/dipy anatomicals, 4D fMRI) axial and coronal, retina crops (grey).
    Cached as uint8 in cache_path."""
    import os
    if cache_path and os.path.exists(cache_path):
        return torch.from_numpy(np.load(cache_path)).float() / 255.0
    from . import prep, sources
    out = []

    def add(sl, sp, win):
        c = to_canvas(prep.window01(sl, win), sp, S)
        out.append((c * 255).round().clamp(0, 255).to(torch.uint8))

    vol, sp, _ = sources.inv3()
    tr = vol[:72]
    wins = [(40, 400), (40, 80), (400, 1800), (50, 350), (-600, 1500)]
    for i, z in enumerate(range(0, 72, 3 if not tiny else 36)):
        add(tr[z], (sp[0], sp[1]), wins[i % len(wins)])
    cor = np.ascontiguousarray(tr[::-1].transpose(1, 0, 2))
    for i, y in enumerate(range(40, 220, 10 if not tiny else 90)):
        add(cor[y], (sp[0], sp[2]), wins[i % len(wins)])
    sag = np.ascontiguousarray(tr[::-1].transpose(2, 0, 1))
    for i, x in enumerate(range(50, 210, 12 if not tiny else 80)):
        add(sag[x], (sp[1], sp[2]), wins[(i + 2) % len(wins)])
    mrs = [(os.path.join(sources.GONII, "int16.nii.gz"), 3), (os.path.join(sources.GONII, "nii2_mni.nii.gz"), 4),
           (os.path.join(sources.NIBABEL, "anatomical.nii"), 2), (os.path.join(sources.DIPY, "aniso_vox.nii.gz"), 2),
           (os.path.join(sources.DIPY, "S0_10slices.nii.gz"), 1), (os.path.join(sources.NIBABEL, "example4d.nii.gz"), 2)]
    for path, step in mrs[: 1 if tiny else None]:
        if not os.path.exists(path):
            continue
        for fn in (sources.nifti_axial, sources.nifti_coronal):
            v, s3 = fn(path)
            win = prep.percentile_window(v)
            nz = [z for z in range(v.shape[0]) if (v[z] > np.percentile(v, 60)).mean() > 0.05]
            for z in nz[::step * (20 if tiny else 1)]:
                add(v[z], (s3[0], s3[1]), win)
    from skimage import io as skio
    ret = skio.imread(os.path.join(sources.SKIMAGE, "retina.jpg"))[..., :3].astype(np.float32).mean(-1)
    rng = np.random.default_rng(0)
    for _ in range(2 if tiny else 24):
        s = int(rng.integers(350, 1411))
        y0, x0 = rng.integers(0, 1411 - s + 1, 2)
        add(ret[y0:y0 + s:3, x0:x0 + s:3], (1.0, 1.0), (127.5, 255.0))
    a = torch.stack(out).numpy()
    if cache_path:
        os.makedirs(os.path.dirname(cache_path) or ".", exist_ok=True)
        np.save(cache_path, a)
    return torch.from_numpy(a).float() / 255.0


def load_labelled_pool(S, cache_path=None):
    """The training slices of atlas.train_slices at S x S (longest side, top-left, zero pad, as the engine feeds
    the model): (images [N,S,S] float in [0,1], labels [N,S,S] int16), cached in cache_path (.npz)."""
    import os
    if cache_path and os.path.exists(cache_path):
        z = np.load(cache_path)
        return torch.from_numpy(z["img"]).float() / 255.0, torch.from_numpy(z["lab"].astype(np.int64))
    from . import atlas, prep
    imgs, labs = [], []
    for img, win, lab, sp in atlas.train_slices():
        c = to_canvas(prep.window01(img, win), sp, S)
        imgs.append((c * 255).round().clamp(0, 255).to(torch.uint8))
        labs.append(to_canvas(lab.astype(np.float32), sp, S, "nearest").to(torch.int16))
    img, lab = torch.stack(imgs).numpy(), torch.stack(labs).numpy()
    if cache_path:
        os.makedirs(os.path.dirname(cache_path) or ".", exist_ok=True)
        np.savez(cache_path, img=img, lab=lab)
    return torch.from_numpy(img).float() / 255.0, torch.from_numpy(lab.astype(np.int64))
