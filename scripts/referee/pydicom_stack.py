#!/usr/bin/python3
"""The pydicom + numpy way to open a CT series (the benchmark's third contestant):
read every file, sort by position along the slice normal, stack, apply rescale."""
import os, sys
import numpy as np
import pydicom

folder = sys.argv[1]
files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
dss = [pydicom.dcmread(f) for f in files]
iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
normal = np.cross(iop[:3], iop[3:])
dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
vol = np.stack([d.pixel_array for d in dss]).astype(np.float32)
slope, inter = float(getattr(dss[0], "RescaleSlope", 1)), float(getattr(dss[0], "RescaleIntercept", 0))
vol = vol * slope + inter
print(vol.shape, float(vol.min()), float(vol.max()))
