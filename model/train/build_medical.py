"""Medical training data: real slices from .cache/testdata with label-free targets + synthetic medical look-alikes
with exact masks, and 3D chunks (8 consecutive slices, per-slice masks of one 3D region) for SD-Trans.

Held out (never used here): ITK KmeansTest_* (eval), nipype segmentation*/tpm_* (eval), InVesalius slices
z >= 72 (the bone-mask eval uses z >= 80), Debian mricron-data (reserved).

Usage: build_medical.py [--tiny] OUT2D.npz OUTCHUNKS.npz [SEED] [INVENTORY.json]"""
import glob
import json
import os
import sys
import warnings

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, segmentation, io

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import prep, sources, store, synth  # noqa: E402

warnings.filterwarnings("ignore")
CT_PRESETS = [(40, 400), (40, 80), (400, 1800), (-600, 1500), (60, 350)]
CT_TRAIN_Z = 72  # InVesalius axial slices [0, 72) only


def ct_window(rng):
    c, w = CT_PRESETS[int(rng.integers(len(CT_PRESETS)))]
    return (c + rng.normal(0, 0.05 * w), w * rng.uniform(0.8, 1.25))


def otsu_regions(g01, fg, rng, classes=3, min_px=60, fill=False):
    vals = g01[fg]
    if vals.size < 100 or vals.std() < 1e-3:
        return []
    try:
        th = filters.threshold_multiotsu(vals, classes=classes)
    except Exception:
        return []
    lab = np.digitize(g01, th) + 1
    lab[~fg] = 0
    out = []
    for k in range(1, classes + 1):
        m = ndi.binary_opening(lab == k, iterations=1)
        out += store.components(m, min_px, 3) if fill else _components_nofill(m, min_px, 3)
    return out


def _components_nofill(m, min_px, n):
    lab, k = ndi.label(m)
    if k == 0:
        return []
    sizes = ndi.sum(m, lab, index=np.arange(1, k + 1))
    return [lab == i + 1 for i in np.argsort(-sizes)[:n] if sizes[i] >= min_px]


def felz_regions(g01, rng, n=4, min_px=80):
    f = g01 if g01.ndim == 3 else np.stack([g01] * 3, -1)
    seg = segmentation.felzenszwalb(f, scale=float(rng.uniform(150, 600)), sigma=0.8, min_size=60)
    ids, cnt = np.unique(seg, return_counts=True)
    out = []
    for i in np.argsort(-cnt)[1:n + 1]:  # skip the largest (usually background)
        out += _components_nofill(seg == ids[i], min_px, 1)
    return out


def foreground(g01, thr=None):
    t = filters.threshold_otsu(g01) if thr is None else thr
    m = ndi.binary_opening(g01 > t * 0.5, iterations=2)
    c = store.components(m, 100, 1)
    return c[0] if c else np.zeros_like(m)


def ct_targets(hu, g01, rng):
    body = store.components(hu > -300, 200, 1)
    out = list(body)
    out += _components_nofill(ndi.binary_opening(hu > 250, iterations=1), 40, 4)  # bone pieces
    if body:
        b = body[0]
        soft = ndi.binary_opening((hu > 0) & (hu < 80) & b, iterations=2)
        out += store.components(soft, 80, 3)  # brain / soft tissue compartments
        air = ndi.binary_opening((hu < -300) & ndi.binary_fill_holes(b), iterations=1)
        out += store.components(air, 30, 3)  # sinuses, airways
        out += otsu_regions(g01, b, rng)
    rng.shuffle(out)
    return out


def mr_targets(g01, rng):
    fg = foreground(g01)
    out = [fg] if fg.any() else []
    if fg.any():
        out += otsu_regions(g01, fg, rng, classes=int(rng.integers(3, 5)))
        out += store.components(ndi.binary_erosion(fg, iterations=4) & (g01 > np.percentile(g01[fg], 30)), 100, 1)
    out += felz_regions(g01, rng, 3)
    rng.shuffle(out)
    return out


def add_volume_slices(st, vol, sp3, modality, idx, rng, inv, name, plane="axial", reps=1):
    n = 0
    for z in idx:
        sl = vol[z]
        for _ in range(reps):
            if modality == "CT":
                win = ct_window(rng)
                g = prep.window01(sl, win)
                masks = ct_targets(sl, g, rng)
            else:
                c, w = prep.percentile_window(vol)
                win = (c + rng.normal(0, 0.05 * w), w * rng.uniform(0.85, 1.2))
                g = prep.window01(sl, win)
                masks = mr_targets(g, rng)
            n += st.add(sl, (sp3[0], sp3[1]), win, masks, f"{modality}:{name}:{plane}")
    inv.append({"source": name, "modality": modality, "plane": plane, "samples": n,
                "targets": "HU thresholds (body, bone, soft tissue, air) + multi-Otsu components" if modality == "CT"
                else "foreground, multi-Otsu class components, Felzenszwalb regions"})


def dicom_frames(rng, max_frames=6):
    import pydicom
    out = []
    files = sorted(glob.glob(sources.td("**", "*.dcm"), recursive=True))
    for f in files:
        if "mricron" in f or "/derived/" in f:  # reserved data; derived series are rebuilt from the eval CT
            continue
        try:
            ds = pydicom.dcmread(f)
            mod = str(getattr(ds, "Modality", ""))
            if mod not in ("US", "CT", "MR"):
                continue
            a = ds.pixel_array
            pi = str(getattr(ds, "PhotometricInterpretation", ""))
            if pi.startswith("YBR") and a.shape[-1] == 3:
                # pydicom returns YBR pixels as stored (echo files); the app shows them as RGB.
                from pydicom.pixel_data_handlers.util import convert_color_space
                a = convert_color_space(a, pi, "RGB")
        except Exception:
            continue
        if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3 and getattr(ds, "SamplesPerPixel", 1) == 3):
            frames = [a]
        else:
            k = a.shape[0]
            frames = [a[i] for i in sorted(set(np.linspace(0, k - 1, min(k, max_frames)).astype(int)))]
        for fr in frames:
            if min(fr.shape[:2]) < 48:
                continue
            ps = getattr(ds, "PixelSpacing", None)
            sp = (float(ps[1]), float(ps[0])) if ps is not None else (1.0, 1.0)
            slope = float(getattr(ds, "RescaleSlope", 1) or 1)
            icpt = float(getattr(ds, "RescaleIntercept", 0) or 0)
            out.append((os.path.relpath(f, sources.td()), mod, fr, sp, slope, icpt))
    return out


def build(tiny, out2d, outchunks, seed, inv_path):
    rng = np.random.default_rng(seed)
    st = store.Store()
    inv = []
    scale = 0.04 if tiny else 1.0
    # ---- InVesalius head CT, z < 72 (axial + anisotropic coronal/sagittal reformats)
    vol, sp, _ = sources.inv3()
    tr = vol[:CT_TRAIN_Z]
    zs = range(0, CT_TRAIN_Z, 2) if not tiny else [30]
    add_volume_slices(st, tr, (sp[0], sp[1], sp[2]), "CT", zs, rng, inv, "invesalius-cranium(z<72)", reps=2)
    cor = np.ascontiguousarray(tr[::-1].transpose(1, 0, 2))  # [y, z(up), x]
    add_volume_slices(st, cor, (sp[0], sp[2], sp[1]), "CT", range(40, 220, 12) if not tiny else [128], rng, inv,
                      "invesalius-cranium(z<72)", "coronal")
    sag = np.ascontiguousarray(tr[::-1].transpose(2, 0, 1))  # [x, z(up), y]
    add_volume_slices(st, sag, (sp[1], sp[2], sp[0]), "CT", range(50, 210, 16) if not tiny else [], rng, inv,
                      "invesalius-cranium(z<72)", "sagittal")
    # ---- MR volumes
    mrs = [(os.path.join(sources.GONII, "int16.nii.gz"), "gonii BraTS-like T2", 4),
           (os.path.join(sources.GONII, "nii2_mni.nii.gz"), "gonii MNI152 (NIfTI-2)", 6),
           (os.path.join(sources.NIBABEL, "anatomical.nii"), "nibabel anatomical", 2),
           (os.path.join(sources.DIPY, "aniso_vox.nii.gz"), "dipy aniso_vox", 2),
           (os.path.join(sources.DIPY, "S0_10slices.nii.gz"), "dipy S0_10slices", 1),
           (os.path.join(sources.NIBABEL, "example4d.nii.gz"), "nibabel example4d", 2)]
    vols3d = []
    for path, name, step in (mrs if not tiny else mrs[:1]):
        if not os.path.exists(path):
            continue
        v, s3 = sources.nifti_axial(path)
        nz = [z for z in range(v.shape[0]) if (v[z] > np.percentile(v, 60)).mean() > 0.05]
        idx = nz[::step] if not tiny else nz[len(nz) // 2:len(nz) // 2 + 1]
        add_volume_slices(st, v, s3, "MR", idx, rng, inv, name)
        if v.shape[0] >= 40 and not tiny:
            vc, sc = sources.nifti_coronal(path)
            nzc = [z for z in range(vc.shape[0]) if (vc[z] > np.percentile(vc, 60)).mean() > 0.05]
            add_volume_slices(st, vc, sc, "MR", nzc[::step * 3], rng, inv, name, "coronal")
        vols3d.append((v, s3, "MR", name))
    # ---- DICOM files (US/CT/MR frames): pydicom, grailbio, ami.js, octave-dicom, suyashkumar
    frames = dicom_frames(rng) if not tiny else []
    counts = {}
    for rel, mod, fr, sp2, slope, icpt in frames:
        if fr.ndim == 3:
            g = fr.astype(np.float32)
            masks = felz_regions(g / 255.0, rng, 4) + otsu_regions(g.mean(-1) / 255.0, g.mean(-1) > 5, rng)
            ok = st.add(g, sp2, None, masks, f"{mod}:{rel}")
        else:
            x = fr.astype(np.float32) * slope + icpt
            if mod == "CT":
                win = ct_window(rng)
                ok = st.add(x, sp2, win, ct_targets(x, prep.window01(x, win), rng), f"{mod}:{rel}")
            else:
                c, w = prep.percentile_window(x)
                g = prep.window01(x, (c, w))
                fg = g > 0.02 if mod == "US" else foreground(g)
                masks = otsu_regions(g, fg, rng) + felz_regions(g, rng, 3)
                ok = st.add(x, sp2, (c, w), masks, f"{mod}:{rel}")
        counts[(mod, rel.split("/")[0])] = counts.get((mod, rel.split("/")[0]), 0) + int(ok)
    for (mod, pkg), n in counts.items():
        inv.append({"source": pkg + " DICOM files", "modality": mod, "samples": n,
                    "targets": "Felzenszwalb regions + multi-Otsu components (+ HU thresholds for CT)"})
    # ---- fundus photograph crops
    ret = io.imread(os.path.join(sources.SKIMAGE, "retina.jpg"))[..., :3].astype(np.float32)
    n = 0
    for _ in range(30 if not tiny else 1):
        s = int(rng.integers(350, 1411))
        y0, x0 = rng.integers(0, 1411 - s + 1, 2)
        crop = ret[y0:y0 + s, x0:x0 + s]
        step = max(1, s // 400)
        crop = crop[::step, ::step]
        g = crop.mean(-1) / 255.0
        fov = g > 0.06
        disc = store.components(g > np.percentile(g[fov], 99.3) if fov.any() else g > 1, 50, 1)
        masks = disc + felz_regions(crop / 255.0, rng, 3) + store.components(fov, 500, 1)
        n += st.add(crop, (1.0, 1.0), None, masks, "fundus:skimage-retina")
    inv.append({"source": "skimage retina.jpg crops", "modality": "fundus", "samples": n,
                "targets": "optic disc (brightest 0.7% component), field of view, Felzenszwalb regions"})
    # ---- synthetic medical look-alikes (exact masks)
    for fn, k in ((synth.dermoscopy, 400), (synth.fundus, 250), (synth.ultrasound, 400), (synth.abdomen_ct, 400)):
        n = 0
        for _ in range(max(2, int(k * scale))):
            img, sp2, win, masks = fn(rng)
            n += st.add(img, sp2, win, masks, "synth:" + fn.__name__)
        inv.append({"source": "synthetic " + fn.__name__, "modality": fn.__name__, "samples": n,
                    "targets": "exact masks of the generated structures"})
    st.save(out2d)
    # ---- 3D chunks of 8 consecutive slices for SD-Trans (one 3D region, per-slice masks)
    ch = store.Store(K=1)
    D = 8
    nch = 0
    ctv = [(tr, (sp[0], sp[1], sp[2]), "CT", "invesalius-cranium(z<72)")]
    for v, s3, mod, name in ctv + vols3d:
        if v.shape[0] < D:
            continue
        starts = list(range(0, v.shape[0] - D + 1, 4 if not tiny else 100))
        for z0 in starts[: (24 if not tiny else 1)]:
            sub = v[z0:z0 + D]
            if mod == "CT":
                win = ct_window(rng)
                cands = [store.components(sub > -300, 500, 1), _components_nofill(sub > 250, 200, 2)]
            else:
                c, w = prep.percentile_window(v)
                win = (c, w)
                g = prep.window01(sub, win)
                fg = g > 0.1
                th = filters.threshold_multiotsu(g[fg], 3) if fg.sum() > 100 else [0.3, 0.6]
                cands = [store.components(fg, 500, 1), _components_nofill(g > th[1], 200, 2),
                         _components_nofill((g > th[0]) & (g <= th[1]), 200, 1)]
            cands = [c for cl in cands for c in cl]
            if not cands:
                continue
            tgt = cands[int(rng.integers(len(cands)))]
            for z in range(D):
                st_ok = ch.add(sub[z], (s3[0], s3[1]), win, [tgt[z]], f"chunk:{mod}:{name}", min_px=0)
                if not st_ok:  # keep the chunk aligned: an empty target slice is stored with an empty mask
                    _add_empty(ch, sub[z], (s3[0], s3[1]), win, f"chunk:{mod}:{name}")
            nch += 1
    ch.save(outchunks)
    inv.append({"source": "3D chunks (D=8) from the CT and MR volumes above", "modality": "CT/MR 3D",
                "samples": nch, "targets": "one 3D connected region per chunk (body, bone, Otsu class)"})
    if inv_path:
        with open(inv_path, "w") as f:
            json.dump({"samples_2d": len(st), "chunks": nch, "sources": inv}, f, indent=1)
    print("2D samples", len(st), "chunks", nch)


def _add_empty(ch, sl, sp, win, src):
    a = np.asarray(sl)
    H, W = a.shape[:2]
    Wp, Hp = prep.extent(W, H, sp)
    r = prep.resize01(prep.to01(a, win), Wp, Hp)
    img = np.zeros((3, store.S, store.S), np.uint8)
    img[:, :Hp, :Wp] = np.clip(np.rint(r * 255), 0, 255).astype(np.uint8)
    ch.imgs.append(img)
    ch.wh.append((Wp, Hp))
    ch.masks.append(np.packbits(np.zeros((ch.K, store.L * store.L), bool), axis=1))
    ch.nm.append(0)
    ch.src.append(src)


if __name__ == "__main__":
    args = sys.argv[1:]
    tiny = "--tiny" in args
    args = [a for a in args if a != "--tiny"]
    build(tiny, args[0], args[1], int(args[2]) if len(args) > 2 else 0, args[3] if len(args) > 3 else "")
