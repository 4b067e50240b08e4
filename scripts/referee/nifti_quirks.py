#!/usr/bin/python3
"""Write small NIfTI/Analyze files with the header quirks real files carry, for the
nifti referee (nibabel then says what each one means; medsa must agree).

Headers are built with nibabel's header classes and their fields set directly
(no fix-ups), then header bytes + data are written by hand, so the quirks survive.
Voxel data comes from a real image (nibabel's anatomical.nii), cropped.
"""
import gzip
import os
import sys

import numpy as np
import nibabel as nib

out, src = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
base = np.asanyarray(nib.load(src).dataobj)[:9, :11, :7].astype(np.float64)  # real MR voxels
rot = nib.load(src).affine
oblique = np.array([[-2.0, 0.3, 0.1, 90.0], [0.25, 1.9, -0.5, -120.0], [0.05, 0.55, 2.9, -70.5], [0, 0, 0, 1]])


def write(name, hdr, data, pair=False, gz=False):
    data = np.asarray(data)
    hdr.set_data_shape(data.shape) if hdr['dim'][0] == 0 else None
    raw = data.astype(hdr.get_data_dtype()).tobytes(order='F')
    opener = gzip.open if gz else open
    if pair:
        h, i = name, name.replace('.hdr', '.img')
        with opener(os.path.join(out, h), 'wb') as f:
            f.write(hdr.binaryblock)
        with opener(os.path.join(out, i), 'wb') as f:
            f.write(raw)
    else:
        off = int(hdr['vox_offset'])
        block = hdr.binaryblock
        with opener(os.path.join(out, name), 'wb') as f:
            f.write(block + b'\0' * (off - len(block)) + raw)
    print(os.path.join(out, name))


def n1(dtype=np.int16, endian='<', shape=base.shape, version=1):
    H = nib.Nifti1Header if version == 1 else nib.Nifti2Header
    h = H(endianness=endian)
    h.set_data_dtype(dtype)
    h.set_data_shape(shape)
    h.set_zooms(((2.0, 2.5, 3.0) + (1.0,) * (len(shape) - 3))[:len(shape)])
    h['vox_offset'] = 352 if version == 1 else 544
    return h


# qform only, with qfac 0 (nibabel: treat as 1)
h = n1(); h.set_qform(oblique, code=1); h['pixdim'][0] = 0; h['sform_code'] = 0
write('qfac0.nii', h, base)
# qform only, negative and zero pixdims (nibabel: abs, 0 -> 1)
h = n1(); h.set_qform(oblique, code=2); h['pixdim'][1] = -h['pixdim'][1]; h['pixdim'][2] = 0; h['sform_code'] = 0
write('pixdim_neg_zero.nii', h, base)
# invalid sform code (nibabel: ignored) with a valid qform, big endian
h = n1(endian='>'); h.set_qform(oblique, code=1); h.set_sform(rot, code=1); h['sform_code'] = 7
write('bad_sform_code_be.nii', h, base)
# sform and qform disagree: sform wins
h = n1(); h.set_qform(oblique, code=1); h.set_sform(rot, code=3)
write('sform_wins.nii.gz', h, base, gz=True)
# neither: pixdim affine centred on the volume
h = n1(np.uint8); h['qform_code'] = 0; h['sform_code'] = 0
write('no_xform.nii', h, np.clip(base / 40, 0, 255))
# scl_slope/inter on int16; slope 0 means none
h = n1(); h.set_sform(oblique, code=1); h['scl_slope'] = 0.25; h['scl_inter'] = -12.5
write('scaled.nii', h, base)
h = n1(); h.set_sform(oblique, code=1); h['scl_slope'] = 0; h['scl_inter'] = 99
write('slope0.nii', h, base)
# datatypes
for dt in (np.int8, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float64):
    h = n1(dt); h.set_sform(oblique, code=1)
    d = base - 200 if np.issubdtype(dt, np.signedinteger) else base
    write(f'dt_{np.dtype(dt).name}.nii', h, d)
# NIfTI-2, big endian
h = n1(np.float32, '>', version=2); h.set_qform(oblique, code=1); h['sform_code'] = 0
write('nifti2_be_qform.nii', h, base / 3)
# a .hdr/.img pair (ni1) and a gzipped one
h = nib.nifti1.Nifti1PairHeader(); h.set_data_dtype(np.int16); h.set_data_shape(base.shape)
h.set_zooms((1.5, 1.5, 4)); h.set_sform(oblique, code=2)
write('pair.hdr', h, base, pair=True)
write('pairgz.hdr.gz', h, base, pair=True, gz=True)
# Analyze 7.5 (SPM2) with an SPM origin, and one without
h = nib.spm2analyze.Spm2AnalyzeHeader(); h.set_data_dtype(np.int16); h.set_data_shape(base.shape); h.set_zooms((1.5, 2, 2.5))
h['origin'][:3] = [4, 5, 3]
write('analyze_origin.hdr', h, base, pair=True)
h = nib.analyze.AnalyzeHeader(endianness='>'); h.set_data_dtype(np.float32); h.set_data_shape(base.shape); h.set_zooms((1.5, 2, 2.5))
write('analyze_be.hdr', h, base / 7, pair=True)
# 2D (dim[0] = 2) and 5D
h = n1(np.uint16, shape=base.shape[:2]); h.set_sform(np.diag([-0.5, -0.5, 1, 1]), code=1)
write('two_d.nii', h, base[:, :, 0])
h = n1(np.int16, shape=base.shape + (2, 3)); h.set_sform(oblique, code=1)
write('five_d.nii', h, np.stack([np.stack([base + k + 10 * c for k in range(2)], -1) for c in range(3)], -1))
