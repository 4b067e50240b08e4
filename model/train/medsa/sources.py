"""Loaders for the real images in .cache/testdata (see /work/shared/DATA.md)."""
import glob
import os
import plistlib
import tarfile

import nibabel as nib
import numpy as np


def repo_root():
    d = os.path.dirname(os.path.abspath(__file__))
    while d != "/" and not os.path.exists(os.path.join(d, "go.mod")):
        d = os.path.dirname(d)
    return d


def td(*p):
    return os.path.join(repo_root(), ".cache", "testdata", *p)


INV3 = td("invesalius-examples", "usr/share/doc/invesalius-examples/examples/Cranium.inv3")
ITK = td("insighttoolkit5-examples", "usr/share/doc/insighttoolkit5-examples/examples/Data")
GONII = td("github.com", "okieraised", "gonii", "test_data")
NIPYPE = td("python3-nipype", "usr/lib/python3/dist-packages/nipype/testing/data")
NIBABEL = td("python3-nibabel", "usr/lib/python3/dist-packages/nibabel/tests/data")
DIPY = td("python3-dipy", "usr/lib/python3/dist-packages/dipy/data/files")
SKIMAGE = td("python3-skimage", "usr/lib/python3/dist-packages/skimage/data")
PYDICOM = td("python3-pydicom", "usr/lib/python3/dist-packages/pydicom/data/test_files")


def inv3():
    """InVesalius head CT: HU volume [z, row, col] (rows top-down), spacing (col, row, z) mm, bone mask."""
    with tarfile.open(INV3) as t:
        mem = {os.path.basename(m.name): m for m in t.getmembers()}
        main = plistlib.loads(t.extractfile(mem["main.plist"]).read())
        shp = main["matrix"]["shape"]
        vol = np.frombuffer(t.extractfile(mem["matrix.dat"]).read(), np.int16).reshape(shp)
        masks = {}
        for k, v in main["masks"].items():
            mp = plistlib.loads(t.extractfile(mem[v]).read())
            ms = mp["mask_shape"]
            a = np.frombuffer(t.extractfile(mem[mp["mask_file"]]).read(), np.uint8).reshape(ms)[1:, 1:, 1:]
            masks[mp["name"]] = (a > 127, mp["threshold_range"])
    vol = vol[:, ::-1, :].astype(np.float32)  # VTK bottom-up rows -> top-down
    masks = {k: (m[:, ::-1, :], r) for k, (m, r) in masks.items()}
    sp = main["spacing"]
    return vol, (sp[0], sp[1], sp[2]), masks


def nifti_axial(path):
    """NIfTI -> (volume [z, row, col] in radiological-ish display: RAS canonical, rows = anterior->posterior
    flipped so anterior is up), spacing (col, row, z)."""
    im = nib.as_closest_canonical(nib.load(path))
    a = np.asanyarray(im.dataobj).astype(np.float32)
    if a.ndim == 4:
        a = a[..., 0]
    z = im.header.get_zooms()[:3]
    v = np.transpose(a, (2, 1, 0))[:, ::-1, :]  # [z, y (A up), x]
    return np.ascontiguousarray(v), (float(z[0]), float(z[1]), float(z[2]))


def nifti_coronal(path):
    im = nib.as_closest_canonical(nib.load(path))
    a = np.asanyarray(im.dataobj).astype(np.float32)
    if a.ndim == 4:
        a = a[..., 0]
    z = im.header.get_zooms()[:3]
    v = np.transpose(a, (1, 2, 0))[:, ::-1, :]  # [y, z (S up), x]
    return np.ascontiguousarray(v), (float(z[0]), float(z[2]), float(z[1]))
