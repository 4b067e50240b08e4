#!/usr/bin/python3
"""Compare two NIfTI files (dcm2niix's and medsa's) after bringing both to the closest
canonical orientation: identical shape, affines within --atol mm, voxels equal (or within
--vox-tol for lossy codecs, stated by the caller). Exit 1 on mismatch."""
import argparse, sys
import numpy as np
import nibabel as nib

ap = argparse.ArgumentParser()
ap.add_argument("ref"); ap.add_argument("ours"); ap.add_argument("--name", default="")
ap.add_argument("--atol", type=float, default=0.01)
ap.add_argument("--vox-tol", type=float, default=0.0, help="max |difference| allowed (lossy codecs)")
ap.add_argument("--vox-mean", type=float, default=0.0, help="max mean |difference| allowed")
a = ap.parse_args()

def load(p):
    img = nib.load(p)
    data = np.asanyarray(img.dataobj)
    if data.dtype.names:  # RGB24: structured (R, G, B)
        data = np.stack([data[n] for n in data.dtype.names], axis=-1).astype(np.float64)
        img = nib.Nifti1Image(data, img.affine)
    else:
        img = nib.Nifti1Image(img.get_fdata(dtype=np.float64), img.affine)
    img = nib.as_closest_canonical(img)
    d = np.asarray(img.dataobj)
    # dcm2niix writes a 2D image as (x, y, 1) or (x, y); make both 3D(+channels)
    if d.ndim == 2:
        d = d[:, :, None]
    return d, img.affine

rd, ra = load(a.ref)
od, oa = load(a.ours)
tag = f"{a.name}: " if a.name else ""
if rd.shape != od.shape:
    sys.exit(f"{tag}MISMATCH shape dcm2niix {rd.shape} vs medsa {od.shape}")
da = np.abs(ra - oa).max()
if da > a.atol:
    sys.exit(f"{tag}MISMATCH affine max |diff| {da:.4g} mm > {a.atol}\n dcm2niix:\n{ra}\n medsa:\n{oa}")
diff = np.abs(rd - od)
mx, mean = diff.max(), diff.mean()
if mx > a.vox_tol or mean > max(a.vox_mean, a.vox_tol):
    sys.exit(f"{tag}MISMATCH voxels max |diff| {mx:.4g} mean {mean:.4g} (allowed {a.vox_tol}/{a.vox_mean}); "
             f"{int((diff > a.vox_tol).sum())} of {diff.size} voxels differ")
print(f"{tag}ok shape {rd.shape} affine max|diff| {da:.2e} mm, voxels max|diff| {mx:.3g} mean {mean:.3g}")
