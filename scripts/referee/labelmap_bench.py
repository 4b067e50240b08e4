#!/usr/bin/python3
"""Label-map write benchmark helper (scripts/bench.d/labelmap-write.sh).

make SRC OUT.u8: derive a 512x512x324 label map from the real InVesalius head CT
  (bilinear 3x/2x/2x upsampling as the big DICOM series, then 1 = soft tissue
  -300..300 HU, 2 = bone > 300 HU), saved raw uint8 with i fastest.
nibabel RAW OUT.nii.gz N: best-of-N time of nibabel writing it as .nii.gz (JSON).
check RAW FILE.nii.gz: nibabel reads medsa's file back; voxels must match.
"""
import io, json, os, plistlib, sys, tarfile, time
import numpy as np

SHAPE = (512, 512, 324)  # x, y, z
AFFINE = np.array([[-0.4785, 0, 0, 120], [0, -0.4785, 0, 110], [0, 0, 0.5, -80], [0, 0, 0, 1.0]])


def make(src, out):
    from scipy.ndimage import zoom
    with tarfile.open(src) as t:
        files = {os.path.basename(m.name): m for m in t.getmembers() if m.isfile()}
        main = plistlib.load(t.extractfile(files["main.plist"]))
        m = main["matrix"]
        raw = t.extractfile(files[m["filename"]]).read()
    vol = np.frombuffer(raw, dtype=np.int16).reshape(m["shape"])[:, ::-1, :]
    big = zoom(vol.astype(np.float32), (3, 2, 2), order=1)
    lab = np.zeros(big.shape, np.uint8)
    lab[(big > -300) & (big <= 300)] = 1
    lab[big > 300] = 2
    assert lab.shape == SHAPE[::-1], lab.shape  # (z, y, x) C order == i fastest
    lab.tofile(out)
    print(f"labels: {np.bincount(lab.ravel()).tolist()} voxels per label")


def load(raw):
    return np.fromfile(raw, np.uint8).reshape(SHAPE[::-1]).transpose(2, 1, 0)


def bench(raw, out, n):
    import nibabel as nib
    lab = load(raw)
    best = best_cpu = 1e9
    for _ in range(int(n)):
        c0, t0 = time.process_time(), time.perf_counter()
        img = nib.Nifti1Image(lab, AFFINE, dtype=np.uint8)
        nib.save(img, out)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    print(json.dumps({"seconds": best, "cpu_seconds": best_cpu, "bytes": os.path.getsize(out)}))


def check(raw, path):
    import nibabel as nib
    img = nib.load(path)
    got = np.asanyarray(img.dataobj)
    if img.get_data_dtype() != np.uint8 or not np.array_equal(got, load(raw)):
        sys.exit(f"check: nibabel reads different labels from {path}")
    if not np.allclose(img.affine, AFFINE, atol=1e-4):
        sys.exit(f"check: affine {img.affine.tolist()}")


if __name__ == "__main__":
    {"make": make, "nibabel": bench, "check": check}[sys.argv[1]](*sys.argv[2:])
