"""Evaluation harness: Dice for 1 click, 3 clicks, box; NoC@85 (cap 10) for the model and for classical
interactive segmentation from the same prompts (random walker from clicks, Otsu inside the box), on held-out real
data (never trained on) and held-out synthetic sets. Everything at the slice's own resolution, with the app's
preprocessing (prep.py) and the app's candidate choice (highest predicted IoU).

Usage: evaluate.py CKPT OUT.json [--quick] [--classical-cache FILE] [--zoom POLICY_JSON] [--ranking RANKING_JSON]
                   [--box-clip] | [--zoom '{"manifest": M}'] (all three policies from a manifest)
       evaluate.py --classical-only OUT.json --classical-cache FILE"""
import json
import math
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import nibabel as nib
import numpy as np
import torch
from scipy import ndimage as ndi
from skimage import filters, segmentation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import atlas, load as L, model as M, prep, sources, store, synth  # noqa: E402

warnings.filterwarnings("ignore")


# ---------------------------------------------------------------------------------------------- eval sets
def comps(mask, min_px, n):
    lab, k = ndi.label(mask)
    if k == 0:
        return []
    sizes = ndi.sum(mask, lab, index=np.arange(1, k + 1))
    return [lab == i + 1 for i in np.argsort(-sizes)[:n] if sizes[i] >= min_px]


def itk_t1(max_items):
    """ITK KmeansTest T1 (real MR) with its tissue label map; native coronal slices."""
    img = nib.as_closest_canonical(nib.load(os.path.join(sources.ITK, "KmeansTest_T1UCharRaw.nii.gz")))
    lab = nib.as_closest_canonical(nib.load(os.path.join(sources.ITK, "KmeansTest_T1KmeansPrelimSegmentation.nii.gz")))
    a = np.asanyarray(img.dataobj).astype(np.float32)
    l = np.asanyarray(lab.dataobj)
    z = img.header.get_zooms()
    win = prep.percentile_window(a)
    items = []
    for y in range(10, a.shape[1] - 10, 6):  # coronal planes (RAS: axis 1 = A)
        sl = a[:, y, :].T[::-1]  # rows = S (up), cols = R->L as stored
        ll = l[:, y, :].T[::-1]
        for k in np.unique(ll):
            if k == 0:
                continue
            for m in comps(ll == k, 60, 2):
                items.append(("MR ITK T1 tissue labels", sl, (z[0], z[2]), win, m))
    return _pick(items, max_items)


def nipype_seg(max_items):
    """nipype 3-class segmentation (real label map); the image is rendered from nipype's tissue probability maps
    (T1-like contrast + noise) because the package ships no matching intensity image."""
    seg = nib.as_closest_canonical(nib.load(os.path.join(sources.NIPYPE, "segmentation1.nii.gz")))
    s = np.asanyarray(seg.dataobj)
    tp = [np.asanyarray(nib.as_closest_canonical(nib.load(os.path.join(sources.NIPYPE, f"tpm_0{i}.nii.gz"))).dataobj)
          for i in range(3)]
    rng = np.random.default_rng(7)
    img = 600 * tp[0] + 900 * tp[1] + 250 * tp[2] + rng.normal(0, 25, s.shape)
    z = seg.header.get_zooms()
    win = prep.percentile_window(img)
    items = []
    for k in range(8, s.shape[2] - 8, 4):  # axial
        sl = img[:, :, k].T[::-1]
        ll = s[:, :, k].T[::-1]
        for c in (1, 2, 3):
            for m in comps(ll == c, 25, 1):
                items.append(("MR nipype 3-class seg", sl.astype(np.float32), (z[0], z[1]), win, m))
    return _pick(items, max_items)


def invesalius_bone(max_items):
    """InVesalius head CT, held-out slices z >= 80: bone mask components (InVesalius threshold mask)."""
    vol, sp, masks = sources.inv3()
    bone = None
    for name, (m, r) in masks.items():
        if r[0] > 100:
            bone = m
    items = []
    for z in range(80, vol.shape[0], 3):
        for m in comps(bone[z], 80, 3):
            items.append(("CT InVesalius bone (z>=80)", vol[z], (sp[0], sp[1]), (400.0, 1800.0), m))
    return _pick(items, max_items)


def synthetic(max_items):
    rng = np.random.default_rng(999)  # training used seeds 0/1; these images are new
    items = []
    for fn, name, idx in ((synth.dermoscopy, "synthetic dermoscopy", [0]),
                          (synth.fundus, "synthetic fundus (disc, cup)", [0, 1]),
                          (synth.ultrasound, "synthetic ultrasound nodules", [0, 1]),
                          (synth.abdomen_ct, "synthetic abdominal CT organs", [0, 1, 2, 3, 4, 5, 6])):
        its = []
        for _ in range(12):
            img, sp, win, masks = fn(rng)
            for i in idx:
                if i < len(masks) and masks[i].sum() >= 40:
                    its.append((name, img.astype(np.float32), sp, win, masks[i]))
        items += _pick(its, max_items)
    return items


_pick = atlas._pick  # n items evenly spread (one rule for the atlas's test/validation split and these sets)


# ---------------------------------------------------------------------------------------------- prompts
def deepest(mask):
    d = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(np.argmax(d), d.shape)
    return float(c), float(r)


def next_click(pred, gt):
    fn, fp = gt & ~pred, pred & ~gt
    best = None
    for err, pos in ((fn, True), (fp, False)):
        for m in comps(err, 1, 1):
            if best is None or m.sum() > best[0]:
                best = (m.sum(), m, pos)
    if best is None:
        return None
    u, v = deepest(best[1])
    return u, v, best[2]


def dice(a, b):
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2.0 * (a & b).sum() / s


def iou(a, b):
    u = (a | b).sum()
    return 1.0 if u == 0 else (a & b).sum() / u


def tight_box(m):
    rows = np.nonzero(m.any(1))[0]
    cols = np.nonzero(m.any(0))[0]
    return float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])


# ---------------------------------------------------------------------------------------------- methods
# ---------------------------------------------------------------------------------------------- auto-zoom
# The mirror of model/autozoom.go (zoomCrop, remapLow, Engine.segmentAuto); testdata/autozoom/cases.json holds
# crop_rect's answers and the Go test TestAutoZoomParity checks that Go gives the same.
def keep_zoomed(a, b, z):
    """Whether the zoomed chosen mask b replaces the full view's chosen mask a: their Dice reaches
    z["click_agree"] (absent or 0: always). model/autozoom.go keepZoomed mirrors it."""
    agree = z.get("click_agree", 0)
    if agree <= 0:
        return True
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    return 2.0 * float((a & b).sum()) >= agree * max(1, int(a.sum()) + int(b.sum()))


def crop_rect(u0, v0, u1, v1, z, margin, W, H):
    """Square crop (x0, y0, x1, y1) around the inclusive bbox, or None (see zoomCrop)."""
    side = max(u1 - u0 + 1, v1 - v0 + 1) * margin
    side = math.ceil(max(side, float(z["min_side"])) / 16) * 16
    if side >= z["max_frac"] * max(W, H):
        return None
    s = int(side)

    def axis(c, n):
        if s >= n:
            return 0, n
        a = int(math.floor((c - side / 2) / 8 + 0.5)) * 8
        a = min(max(a, 0), n - s)
        return a, a + s
    x0, x1 = axis((u0 + u1) / 2, W)
    y0, y1 = axis((v0 + v1) / 2, H)
    return x0, y0, x1, y1


def remap_low(src, gs, ou, ov, gd, fill=-20.0):
    """Low-res logits [L,L] from geometry gs (its pixel (0,0) at (ou, ov) of the destination slice) into gd's
    frame (see remapLow). g = dict(W, H, W2, H2, S, L)."""
    L, Ls = gd["L"], gs["L"]
    cw = min(Ls, math.ceil(gs["W2"] * Ls / gs["S"]))
    ch = min(Ls, math.ceil(gs["H2"] * Ls / gs["S"]))
    cell = (np.arange(L) + 0.5) * gd["S"] / L
    u = cell * gd["W"] / gd["W2"] - ou
    v = cell * gd["H"] / gd["H2"] - ov
    fx = u * gs["W2"] / gs["W"] * Ls / gs["S"] - 0.5
    fy = v * gs["H2"] / gs["H"] * Ls / gs["S"] - 0.5
    okx = (u >= 0) & (u <= gs["W"]) & (fx >= -0.5) & (fx <= cw - 0.5)
    oky = (v >= 0) & (v <= gs["H"]) & (fy >= -0.5) & (fy <= ch - 0.5)
    x0 = np.clip(np.floor(fx).astype(int), 0, cw - 1)
    y0 = np.clip(np.floor(fy).astype(int), 0, ch - 1)
    x1, y1 = np.minimum(x0 + 1, cw - 1), np.minimum(y0 + 1, ch - 1)
    ax = np.clip(fx - x0, 0, 1)[None, :]
    ay = np.clip(fy - y0, 0, 1)[:, None]
    s_ = np.asarray(src, np.float32)
    a = s_[y0][:, x0] * (1 - ax) + s_[y0][:, x1] * ax
    b = s_[y1][:, x0] * (1 - ax) + s_[y1][:, x1] * ax
    out = (a * (1 - ay) + b * ay).astype(np.float32)
    out[~(oky[:, None] & okx[None, :])] = fill
    return out


def box_clip_rect(box, clicks, W, H):
    """The pixels (u0, v0, u1, v1 exclusive) a box prompt's masks are clipped to under the manifest's "box_clip":
    the box's pixels, floor(min u)..floor(max u) inclusive, widened to the positive clicks, inside the slice.
    model/boxclip.go boxClipRect mirrors it."""
    u0, u1 = min(box[0], box[2]), max(box[0], box[2])
    v0, v1 = min(box[1], box[3]), max(box[1], box[3])
    for u, v, pos in clicks:
        if pos:
            u0, u1, v0, v1 = min(u0, u), max(u1, u), min(v0, v), max(v1, v)
    c = lambda x, n: min(max(int(x), 0), n)  # noqa: E731
    return c(math.floor(u0), W), c(math.floor(v0), H), c(math.floor(u1) + 1, W), c(math.floor(v1) + 1, H)


class ModelSeg:
    """The engine's answer to prompts, in PyTorch: preprocessing, candidates, the IoU ranking, the previous
    logits fed back (always in the full view's frame) and the auto-zoom policy `zoom` (the manifest's
    auto_zoom dict, None = full view only), as model/engine.go does."""

    def __init__(self, m, zoom=None, ranking=None, box_clip=False):
        self.m = m
        self.zoom = zoom
        self.ranking = ranking  # the manifest's "ranking" dict, None = the IoU head alone
        self.box_clip = box_clip  # the manifest's "box_clip": a box's masks cut to the box (and positive clicks)

    def best(self, scores, low):
        """The candidate offered first, as model/ranking.go: IoU prediction + weight x stability."""
        s = np.asarray(scores, np.float64).copy()
        r = self.ranking
        if r and r.get("stability_weight", 0) > 0:
            off = r["stability_offset"]
            s += r["stability_weight"] * np.array([((l > off).sum() + 1) / ((l > -off).sum() + 1) for l in low])
        return int(np.argmax(s))

    def set_image(self, sl, sp, win):
        a = np.asarray(sl)
        self.sl, self.sp, self.win = a, sp, win
        self.H, self.W = a.shape[:2]
        self.embs = {}
        self.emb, self.geo = self._embed(None)
        self.Wp, self.Hp = self.geo["W2"], self.geo["H2"]
        self.prev = None

    def set_embedding(self, emb, W, H, Wp, Hp):
        """Use a given full-view embedding (e.g. from encoder3d) instead of encoding; no zoom then."""
        self.sl = None
        self.H, self.W, self.Wp, self.Hp = H, W, Wp, Hp
        self.geo = {"W": W, "H": H, "W2": Wp, "H2": Hp, "S": self.m.cfg.img_size, "L": self.m.cfg.low_res}
        self.embs = {None: (emb, self.geo)}
        self.emb = emb
        self.zoom = None
        self.prev = None

    def _embed(self, crop):
        if crop in self.embs:
            return self.embs[crop]
        a = self.sl if crop is None else self.sl[crop[1]:crop[3], crop[0]:crop[2]]
        img, (Wp, Hp) = prep.preprocess(a, self.sp, self.win, getattr(self.m, "prep", prep.DEFAULT))
        with torch.no_grad():
            emb = self.m.image_encoder(torch.from_numpy(img)[None])
        g = {"W": a.shape[1], "H": a.shape[0], "W2": Wp, "H2": Hp, "S": self.m.cfg.img_size, "L": self.m.cfg.low_res}
        self.embs[crop] = (emb, g)
        return emb, g

    def _decode(self, crop, clicks, box, mask_full):
        """Decode on the full view (crop None) or a crop; masks [M,H,W] bool, scores [M], full-frame logits."""
        emb, g = self._embed(crop)
        ox, oy = (0, 0) if crop is None else (crop[0], crop[1])
        W, H = g["W"], g["H"]
        cu = lambda u: min(max(u - ox, 0.0), W - 1.0)  # noqa: E731
        cv = lambda v: min(max(v - oy, 0.0), H - 1.0)  # noqa: E731
        pts, labs = [], []
        for u, v, pos in clicks:
            pts.append(prep.to_model_coords(cu(u), cv(v), W, H, g["W2"], g["H2"]))
            labs.append(1.0 if pos else 0.0)
        if box is not None:
            pts += [prep.to_model_coords(cu(min(box[0], box[2])), cv(min(box[1], box[3])), W, H, g["W2"], g["H2"]),
                    prep.to_model_coords(cu(max(box[0], box[2])), cv(max(box[1], box[3])), W, H, g["W2"], g["H2"])]
            labs += [2.0, 3.0]
        else:
            pts.append((0.0, 0.0))
            labs.append(-1.0)
        L = self.m.cfg.low_res
        mi, has = torch.zeros(1, 1, L, L), torch.zeros(1)
        if mask_full is not None:
            m_ = mask_full if crop is None else remap_low(mask_full, self.geo, -ox, -oy, g)
            mi, has = torch.from_numpy(np.ascontiguousarray(m_, np.float32))[None, None], torch.ones(1)
        with torch.no_grad():
            low, sc = self.m.decode(emb, torch.tensor([pts], dtype=torch.float32),
                                    torch.tensor([labs], dtype=torch.float32), mi, has)
        masks = prep.postprocess_masks(low.numpy(), W, H, g["W2"], g["H2"], self.m.cfg.img_size)[0].numpy() > 0
        low = low[0].numpy()
        if crop is None:
            return masks, sc[0].numpy(), low
        full = np.zeros((len(masks), self.H, self.W), bool)
        full[:, crop[1]:crop[3], crop[0]:crop[2]] = masks
        return full, sc[0].numpy(), np.stack([remap_low(x, g, ox, oy, self.geo) for x in low])

    def candidates(self, clicks, box=None, use_prev=True):
        """All candidate masks at the slice's resolution, the IoU head's scores, and full-frame low-res logits
        [M,L,L], with the zoom policy and the box clip applied (the logits are not clipped, as in Go)."""
        masks, sc, low = self._candidates(clicks, box, use_prev)
        if box is not None and self.box_clip:
            u0, v0, u1, v1 = box_clip_rect(box, clicks, self.W, self.H)
            keep = np.zeros(masks.shape[1:], bool)
            keep[v0:v1, u0:u1] = True
            masks = masks & keep
        return masks, sc, low

    def _candidates(self, clicks, box, use_prev):
        prev = self.prev if use_prev else None
        z = self.zoom
        if z is not None and box is not None:
            c = crop_rect(min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]), z,
                          z["box_margin"], self.W, self.H)
            return self._decode(c, clicks, box, prev)
        masks, sc, low = self._decode(None, clicks, box, prev)
        if z is None or box is not None or z.get("click_below", 0) <= 0 or len(clicks) < z.get("click_min_points", 0):
            return masks, sc, low
        b = self.best(sc, low)
        if masks[b].sum() >= z["click_below"] * self.W * self.H or not masks[b].any():
            return masks, sc, low
        rows, cols = np.nonzero(masks[b].any(1))[0], np.nonzero(masks[b].any(0))[0]
        u0, u1, v0, v1 = float(cols[0]), float(cols[-1]), float(rows[0]), float(rows[-1])
        for u, v, pos in clicks:
            if pos:
                u0, v0 = min(u0, math.floor(u)), min(v0, math.floor(v))
                u1, v1 = max(u1, math.floor(u)), max(v1, math.floor(v))
        c = crop_rect(u0, v0, u1, v1, z, z["click_margin"], self.W, self.H)
        if c is None:
            return masks, sc, low
        m2, s2, l2 = self._decode(c, clicks, box, prev)
        if not keep_zoomed(masks[b], m2[self.best(s2, l2)], z):
            return masks, sc, low
        return m2, s2, l2

    def predict(self, clicks, box=None, use_prev=True):
        """The app's answer: the candidate the IoU head ranks first; it is fed back as the next mask_input."""
        masks, scores, low = self.candidates(clicks, box, use_prev)
        b = self.best(scores, low)
        self.prev = low[b]
        return masks[b]


class Classical:
    """Random walker from clicks (image border as background seeds when no negative click), Otsu in the box."""

    def set_image(self, sl, sp, win):
        a = np.asarray(sl, np.float32)
        self.g = (a.mean(-1) / 255.0) if a.ndim == 3 else prep.window01(a, win)
        self.prev = None

    def predict(self, clicks, box=None, use_prev=True):
        g = self.g
        if box is not None and not clicks:
            u0, v0, u1, v1 = [int(round(x)) for x in box]
            roi = g[v0:v1 + 1, u0:u1 + 1]
            out = np.zeros(g.shape, bool)
            if roi.size < 4 or roi.std() < 1e-6:
                out[v0:v1 + 1, u0:u1 + 1] = True
                return out
            t = filters.threshold_otsu(roi)
            fgc = roi > t
            cy, cx = roi.shape[0] // 2, roi.shape[1] // 2
            if not fgc[max(0, cy - 2):cy + 3, max(0, cx - 2):cx + 3].mean() >= 0.5:
                fgc = ~fgc  # the class at the box centre is the object
            lab, _ = ndi.label(fgc)
            k = lab[cy, cx] if lab[cy, cx] else (np.bincount(lab.ravel())[1:].argmax() + 1 if lab.max() else 0)
            r = ndi.binary_fill_holes(lab == k) if k else fgc
            out[v0:v1 + 1, u0:u1 + 1] = r
            return out
        seeds = np.zeros(g.shape, np.int32)
        seeds[0, :] = seeds[-1, :] = seeds[:, 0] = seeds[:, -1] = 2
        for u, v, pos in clicks:
            r, c = int(round(v)), int(round(u))
            seeds[max(0, r - 1):r + 2, max(0, c - 1):c + 2] = 1 if pos else 2
        if not (seeds == 1).any():
            return np.zeros(g.shape, bool)
        try:
            lab = segmentation.random_walker(g, seeds, beta=130, mode="cg_j", tol=1e-2)
        except Exception:
            lab = segmentation.random_walker(g, seeds, beta=130, mode="bf")
        return lab == 1


def test_items(which="all", quick=False):
    """The test items: "base" (the 1.x/2.0 list), "atlas" (the held-out labelled anatomy) or "all"."""
    n = 5 if quick else 15
    sets = []
    if which in ("base", "all"):
        sets += itk_t1(n) + nipype_seg(n) + invesalius_bone(n) + synthetic(3 if quick else 6)
    if which in ("atlas", "all"):
        sets += atlas.heldout_brain_items(2 * n) + atlas.heldout_lesion_items(n)
    return sets


def run_item(meth, it):
    name, sl, sp, win, gt = it
    meth.set_image(sl, sp, win)
    res = {}
    u, v = deepest(gt)
    clicks = [(u, v, True)]
    p = meth.predict(clicks, use_prev=False)
    res["click1"] = dice(p, gt)
    ious = [iou(p, gt)]
    for k in range(9):
        c = next_click(p, gt)
        if c is None:
            ious.append(1.0)
            break
        clicks.append(c)
        p = meth.predict(clicks)
        if k == 1:
            res["click3"] = dice(p, gt)
        ious.append(iou(p, gt))
        if k >= 1 and ious[-1] >= 0.85:
            break
    res.setdefault("click3", dice(p, gt))
    noc = next((i + 1 for i, x in enumerate(ious) if x >= 0.85), None)
    res["noc85"] = float(noc) if noc is not None else 10.0
    res["reached85"] = noc is not None
    b = tight_box(gt)
    if hasattr(meth, "prev"):
        meth.prev = None
    res["box"] = dice(meth.predict([], box=b, use_prev=False), gt)
    return res


def main():
    torch.set_num_threads(2)
    argv = sys.argv[1:]
    quick = "--quick" in argv
    cache = argv[argv.index("--classical-cache") + 1] if "--classical-cache" in argv else ""
    only_classical = "--classical-only" in argv
    zoom = json.loads(argv[argv.index("--zoom") + 1]) if "--zoom" in argv else None
    ranking = json.loads(argv[argv.index("--ranking") + 1]) if "--ranking" in argv else None
    box_clip = "--box-clip" in argv
    if zoom is not None and "manifest" in zoom:  # {"manifest": "path/manifest.json"}: the model's own policies
        man = json.load(open(zoom["manifest"]))
        zoom, ranking, box_clip = man.get("auto_zoom"), man.get("ranking"), man.get("box_clip", False)
    args = [a for i, a in enumerate(argv) if not a.startswith("--") and not (i > 0 and argv[i - 1] in
                                                                              ("--classical-cache", "--zoom", "--ranking", "--sets"))]
    # --sets base: the 1.x/2.0 item list; atlas: the held-out labelled anatomy of medsa/atlas.py (MNI2009c
    # subcortical structures and whole brain, pyradiomics lesions); all (default when fetched): both
    which = argv[argv.index("--sets") + 1] if "--sets" in argv else ("all" if os.path.exists(atlas.CHIMERA) else "base")
    sets = test_items(which, quick)
    rows = {}
    t0 = time.time()
    if "--model-only" in argv:
        pass
    elif cache and os.path.exists(cache):
        cl = json.load(open(cache))
        assert cl["n_items"] == len(sets), "classical cache was made for another item list (--sets?)"
        rows.update({(ds, "classical"): rs for ds, rs in cl["rows"]})
    else:
        meth = Classical()
        for it in sets:
            rows.setdefault((it[0], "classical"), []).append(run_item(meth, it))
        if cache:
            with open(cache, "w") as f:
                json.dump({"n_items": len(sets), "rows": [[k[0], v] for k, v in rows.items()]}, f)
    if not only_classical:
        m = L.from_checkpoint(args[0])
        meth = ModelSeg(m, zoom, ranking, box_clip)
        for it in sets:
            rows.setdefault((it[0], "model"), []).append(run_item(meth, it))
    out = {"checkpoint": args[0] if args else "", "zoom": zoom, "ranking": ranking, "box_clip": box_clip, "seconds": round(time.time() - t0, 1), "table": []}
    for (ds, mn), rs in sorted(rows.items()):
        out["table"].append({"set": ds, "method": mn, "n": len(rs),
                             **{k: float(np.mean([r[k] for r in rs])) for k in ("click1", "click3", "box", "noc85")},
                             "reached85": float(np.mean([r["reached85"] for r in rs]))})
    with open(args[-1] if args else "eval.json", "w") as f:
        json.dump(out, f, indent=1)
    print(f"{'set':34s} {'method':9s} {'n':>3s} {'1clk':>5s} {'3clk':>5s} {'box':>5s} {'NoC85':>5s}")
    for r in out["table"]:
        print(f"{r['set']:34s} {r['method']:9s} {r['n']:3d} {r['click1']:5.3f} {r['click3']:5.3f} {r['box']:5.3f} "
              f"{r['noc85']:5.2f}")


if __name__ == "__main__":
    main()
