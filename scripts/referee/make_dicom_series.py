#!/usr/bin/python3
"""Write DICOM series derived from the real InVesalius head CT (Cranium.inv3).

Cranium.inv3 is a tar.gz of plist XML + raw arrays; matrix.dat is int16 C-order
(slices, rows, cols) with VTK bottom-up rows. Series written (one folder each):
  axial/     108 axial slices 256x256, random file names, InstanceNumber reversed
  oblique/   the same voxels on a grid rotated 20 deg about x and 10 deg about z
  coronal/   the volume resliced into 256 coronal slices of 108x256
  big/       upsampled to 512x512x324 (bilinear; for the benchmark)
  axial8/    8-bit windowed copy of 24 slices (input of JPEG baseline)
  multi/     one multi-frame enhanced CT file (per-frame functional groups) of 24 slices
"""
import io, os, plistlib, sys, tarfile, hashlib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

src, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)

def load():
    with tarfile.open(src) as t:
        files = {os.path.basename(m.name): m for m in t.getmembers() if m.isfile()}
        main = plistlib.load(t.extractfile(files["main.plist"]))
        m = main["matrix"]
        raw = t.extractfile(files[m["filename"]]).read()
    vol = np.frombuffer(raw, dtype=np.int16).reshape(m["shape"])
    vol = vol[:, ::-1, :]  # VTK rows run bottom-up: make row 0 the top (anterior) row
    return np.ascontiguousarray(vol), main["spacing"]

def uid(name):  # deterministic UIDs so reruns give identical files
    return "2.25." + str(int(hashlib.sha1(name.encode()).hexdigest()[:30], 16))

def base(series, desc, number, modality="CT"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid("medsa-impl")
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.StudyDate, ds.StudyTime = "20120914", "151208"
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "medsa test data (derived from InVesalius Cranium.inv3)"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = desc
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Cranium^Test", "INV0051", "", "O"
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid(series)
    ds.StudyID, ds.SeriesNumber = "1", number
    ds.FrameOfReferenceUID = uid("for")
    ds.PositionReferenceIndicator = ""
    ds.Laterality, ds.PatientPosition, ds.AcquisitionNumber = "", "HFS", 1
    ds.KVP = "120"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    return ds

def fmt(x):
    return [float("%.6f" % v) for v in x]

def write_series(folder, series, desc, number, slices, row, col, origin, step, ps, names=None, instance=None):
    """slices: (n, rows, cols) HU; row/col: direction cosines (LPS); step: slice vector (mm)."""
    os.makedirs(folder, exist_ok=True)
    n = len(slices)
    for k in range(n):
        ds = base(series, desc, number)
        ds.SOPInstanceUID = uid(f"{series}/{k}")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = instance(k) if instance else k + 1
        ds.ImagePositionPatient = fmt(np.asarray(origin) + k * np.asarray(step))
        ds.ImageOrientationPatient = fmt(list(row) + list(col))
        ds.SliceThickness = "%.4f" % np.linalg.norm(step)
        ds.PixelSpacing = fmt(ps)
        ds.Rows, ds.Columns = slices[k].shape
        stored = np.clip(slices[k].astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        name = names[k] if names else "IM%04d.dcm" % (k + 1)
        ds.save_as(os.path.join(folder, name), write_like_original=False)

vol, sp = load()
nz, ny, nx = vol.shape
dx, dy, dz = sp
origin = np.array([-(nx - 1) * dx / 2, -(ny - 1) * dy / 2, -60.0])

# Axial: file names random, InstanceNumber reversed: only positions give the order.
names = ["%08x.dcm" % v for v in rng.choice(1 << 31, size=nz, replace=False)]
write_series(f"{out}/axial", "axial", "Head CT axial", 2, vol, [1, 0, 0], [0, 1, 0], origin, [0, 0, dz],
             [dy, dx], names=names, instance=lambda k: nz - k)

# Oblique: rotate the grid 20 deg about x then 10 deg about z; the voxels are unchanged.
a, b = np.radians(20), np.radians(10)
Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
Rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
R = Rz @ Rx
write_series(f"{out}/oblique", "oblique", "Head CT oblique", 3, vol, R[:, 0], R[:, 1], R @ origin, R[:, 2] * dz, [dy, dx])

# Coronal: slices along y (posterior = increasing LPS y), rows run superior->inferior, columns along x.
cor = vol[::-1, :, :].transpose(1, 0, 2)  # (ny, nz, nx): row 0 = top slice
top = origin + np.array([0, 0, (nz - 1) * dz])
write_series(f"{out}/coronal", "coronal", "Head CT coronal reslice", 4, cor, [1, 0, 0], [0, 0, -1], top, [0, dy, 0], [dz, dx])

# 8-bit windowed copy (JPEG baseline needs 8 bits): 24 slices.
os.makedirs(f"{out}/axial8", exist_ok=True)
for k in range(24):
    z = 40 + k
    ds = base("axial8", "Head CT 8-bit window", 5, modality="OT")
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.ConversionType = "WSD"
    del ds.KVP
    ds.RescaleType, ds.PatientOrientation = "US", ["L", "P"]
    ds.SOPInstanceUID = uid(f"axial8/{k}")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = fmt(origin + [0, 0, z * dz])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = fmt([dy, dx])
    ds.SliceThickness = "1.5"
    ds.Rows, ds.Columns = ny, nx
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    ds.WindowCenter, ds.WindowWidth = "128", "256"
    ds.PixelData = np.clip((vol[z].astype(np.float32) + 160) * (255 / 400), 0, 255).astype(np.uint8).tobytes()
    ds.save_as(f"{out}/axial8/IM{k+1:04d}.dcm", write_like_original=False)

# Multi-frame enhanced CT: 24 frames with per-frame positions, stored in reverse order.
def enhanced():
    sel = list(range(60, 84))[::-1]
    ds = base("multi", "Head CT enhanced multi-frame", 6)
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = uid("multi/0")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    for k in ("RescaleIntercept", "RescaleSlope", "RescaleType", "WindowCenter", "WindowWidth"):
        delattr(ds, k)
    ds.NumberOfFrames = len(sel)
    ds.Rows, ds.Columns = ny, nx
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = "20120914", "151208", "20120914151208"
    sh = Dataset()
    pm = Dataset(); pm.PixelSpacing = fmt([dy, dx]); pm.SliceThickness = "1.5"
    po = Dataset(); po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pv = Dataset(); pv.RescaleIntercept, pv.RescaleSlope, pv.RescaleType = "-1024", "1", "HU"
    voi = Dataset(); voi.WindowCenter, voi.WindowWidth = "40", "400"
    sh.PixelMeasuresSequence = Sequence([pm]); sh.PlaneOrientationSequence = Sequence([po])
    sh.PixelValueTransformationSequence = Sequence([pv]); sh.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([sh])
    per = []
    for i, z in enumerate(sel):
        f = Dataset()
        pp = Dataset(); pp.ImagePositionPatient = fmt(origin + [0, 0, z * dz])
        fc = Dataset(); fc.InStackPositionNumber = i + 1; fc.StackID = "1"
        f.PlanePositionSequence = Sequence([pp]); f.FrameContentSequence = Sequence([fc])
        per.append(f)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = np.clip(vol[sel].astype(np.int32) + 1024, 0, 4095).astype(np.uint16).tobytes()
    os.makedirs(f"{out}/multi", exist_ok=True)
    ds.save_as(f"{out}/multi/enhanced_ct.dcm", write_like_original=False)
enhanced()

# Big: 512x512x324 (bilinear 2x in-plane, 3x along z) for the benchmark.
if not os.environ.get("SKIP_BIG"):
    from scipy.ndimage import zoom
    big = zoom(vol.astype(np.float32), (3, 2, 2), order=1).round().astype(np.int16)
    bz, by, bx = big.shape
    bdx, bdy, bdz = dx * (nx - 1) / (bx - 1), dy * (ny - 1) / (by - 1), dz * (nz - 1) / (bz - 1)
    write_series(f"{out}/big", "big", "Head CT upsampled 512x512", 7, big, [1, 0, 0], [0, 1, 0], origin, [0, 0, bdz], [bdy, bdx])
print("wrote", out)
