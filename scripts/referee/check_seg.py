#!/usr/bin/python3
"""Outside referee for medsa's DICOM-SEG writer.

pydicom reads the SEG back on its own (bits unpacked with numpy, frames placed on
the source slice whose ImagePositionPatient they carry, not by frame order) and
must give exactly the label map medsa wrote; it also checks the references,
geometry and copied patient/study attributes against the source. With
--highdicom, highdicom (run this script with the venv's python) decodes the SEG
by its source-image references as a third, independent reading.

usage: check_seg.py SEG SOURCE LABELS.raw NX NY NZ [--highdicom]
  SOURCE      the source series: a folder of single-frame files, or one multi-frame file
  LABELS.raw  uint16 little endian, i fastest (medsa's voxel order), slices sorted
              along the slice normal as medsa sorts them; label value = SegmentNumber
Exit status 0 when every check holds, 1 otherwise (each failure printed).
"""
import os
import sys

import numpy as np
import pydicom

args = [a for a in sys.argv[1:] if not a.startswith("--")]
use_hd = "--highdicom" in sys.argv
seg_path, src_path, raw_path = args[0], args[1], args[2]
nx, ny, nz = (int(x) for x in args[3:6])
want = np.fromfile(raw_path, dtype="<u2").reshape(nz, ny, nx)
fails = []


def check(ok, msg):
    if not ok:
        fails.append(msg)


def source_slices(src):
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(src) for f in fs] if os.path.isdir(src) else [src]
    out, first = [], None
    for f in sorted(files):
        d = pydicom.dcmread(f, stop_before_pixels=True)
        first = first or d
        if "PerFrameFunctionalGroupsSequence" in d:
            iop = d.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
            for i, fg in enumerate(d.PerFrameFunctionalGroupsSequence):
                pos = fg.PlanePositionSequence[0].ImagePositionPatient
                out.append((np.array(pos, float), d.SOPClassUID, d.SOPInstanceUID, i + 1, np.array(iop, float)))
        else:
            out.append((np.array(d.ImagePositionPatient, float), d.SOPClassUID, d.SOPInstanceUID, None,
                        np.array(d.ImageOrientationPatient, float)))
    iop = out[0][4]
    normal = np.cross(iop[:3], iop[3:])
    out.sort(key=lambda s: float(normal @ s[0]))
    return out, iop, first


slices, iop, first = source_slices(src_path)
check(len(slices) == nz, f"source has {len(slices)} slices, label map {nz}")

seg = pydicom.dcmread(seg_path)
check(seg.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1", "transfer syntax " + seg.file_meta.TransferSyntaxUID)
check(seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4", "SOP class " + seg.SOPClassUID)
check(seg.file_meta.MediaStorageSOPInstanceUID == seg.SOPInstanceUID, "meta SOP instance differs")
check(seg.SegmentationType == "BINARY" and seg.BitsAllocated == 1, "not a BINARY 1-bit segmentation")
check(seg.Modality == "SEG", "modality " + seg.Modality)
for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
           "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID"):
    check(str(seg.get(kw, "")) == str(first.get(kw, "")), f"{kw} {seg.get(kw)!r}, source {first.get(kw)!r}")
check(seg.SeriesInstanceUID != first.SeriesInstanceUID, "SEG reuses the source's SeriesInstanceUID")
check(seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID, "ReferencedSeriesSequence series")
refd = {(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
check(refd == {(s[1], s[2]) for s in slices}, "ReferencedInstanceSequence is not the source's instances")
sh = seg.SharedFunctionalGroupsSequence[0]
check(np.allclose(np.array(sh.PlaneOrientationSequence[0].ImageOrientationPatient, float), iop, atol=1e-6),
      "shared orientation differs from the source")

rows, cols, nf = seg.Rows, seg.Columns, int(seg.NumberOfFrames)
check((rows, cols) == (ny, nx), f"frames {rows}x{cols}, want {ny}x{nx}")
bits = np.unpackbits(np.frombuffer(seg.PixelData, np.uint8), bitorder="little")[: nf * rows * cols]
frames = bits.reshape(nf, rows, cols)
got = np.zeros_like(want)
pos_index = {tuple(s[0]): k for k, s in enumerate(slices)}
for f, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
    pos = tuple(np.array(fg.PlanePositionSequence[0].ImagePositionPatient, float))
    k = pos_index.get(pos)
    if k is None:
        fails.append(f"frame {f + 1}: position {pos} is no source slice's ImagePositionPatient")
        continue
    src = fg.DerivationImageSequence[0].SourceImageSequence[0]
    check(src.ReferencedSOPInstanceUID == slices[k][2], f"frame {f + 1}: references {src.ReferencedSOPInstanceUID}, slice is {slices[k][2]}")
    if slices[k][3] is not None:
        check(int(src.ReferencedFrameNumber) == slices[k][3], f"frame {f + 1}: ReferencedFrameNumber {src.get('ReferencedFrameNumber')}, want {slices[k][3]}")
    num = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    check(list(fg.FrameContentSequence[0].DimensionIndexValues) == [num, k + 1], f"frame {f + 1}: DimensionIndexValues")
    got[k][frames[f] == 1] = num
diff = int((got != want).sum())
check(diff == 0, f"pydicom: {diff} voxels differ from the label map")

if use_hd:
    import highdicom as hd

    s = hd.seg.segread(seg_path)
    if slices[0][3] is not None:  # one multi-frame source instance
        arr = s.get_pixels_by_source_frame(slices[0][2], [x[3] for x in slices], combine_segments=True,
                                           assert_missing_frames_are_empty=True)
    else:
        arr = s.get_pixels_by_source_instance([x[2] for x in slices], combine_segments=True,
                                              assert_missing_frames_are_empty=True)
    hdiff = int((np.asarray(arr) != want).sum())
    check(hdiff == 0, f"highdicom {hd.__version__}: {hdiff} voxels differ from the label map")

name = os.path.basename(seg_path)
if fails:
    for m in fails[:20]:
        print(f"{name}: FAIL {m}")
    sys.exit(1)
print(f"{name}: OK ({nf} frames, {len(seg.SegmentSequence)} segments{', highdicom agrees' if use_hd else ''})")
