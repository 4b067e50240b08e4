// Package nifti reads NIfTI-1, NIfTI-2 and Analyze 7.5 images into a volume.Volume
// and writes volumes and label maps as NIfTI-1 (.nii or .nii.gz).
//
// Geometry follows nibabel, the de-facto reference: the affine is the sform when
// sform_code > 0, else the qform when qform_code > 0, else a pixdim-only affine
// centred on the volume (x flipped, as Analyze assumes); header fields are fixed
// up the way nibabel's header checks do before that choice (pixdim 0 -> 1,
// negative pixdim -> abs, qfac not ±1 -> 1, unknown xform codes -> 0).
package nifti

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// NIfTI datatype codes.
const (
	dtBinary     = 1
	dtUint8      = 2
	dtInt16      = 4
	dtInt32      = 8
	dtFloat32    = 16
	dtComplex64  = 32
	dtFloat64    = 64
	dtRGB24      = 128
	dtInt8       = 256
	dtUint16     = 512
	dtUint32     = 768
	dtInt64      = 1024
	dtUint64     = 1280
	dtFloat128   = 1536
	dtComplex128 = 1792
	dtComplex256 = 2048
	dtRGBA32     = 2304
)

// typeInfo describes a datatype: bytes per voxel, name, channels, integer-ness.
type typeInfo struct {
	size     int
	name     string
	channels int
	integer  bool
}

var types = map[int]typeInfo{
	dtUint8:   {1, "uint8", 1, true},
	dtInt8:    {1, "int8", 1, true},
	dtInt16:   {2, "int16", 1, true},
	dtUint16:  {2, "uint16", 1, true},
	dtInt32:   {4, "int32", 1, true},
	dtUint32:  {4, "uint32", 1, true},
	dtInt64:   {8, "int64", 1, true},
	dtUint64:  {8, "uint64", 1, true},
	dtFloat32: {4, "float32", 1, false},
	dtFloat64: {8, "float64", 1, false},
	dtRGB24:   {3, "rgb24", 3, true},
	dtRGBA32:  {4, "rgba32", 3, true},
}

var unsupported = map[int]string{
	dtBinary:     "1-bit binary",
	dtComplex64:  "complex64",
	dtComplex128: "complex128",
	dtComplex256: "complex256",
	dtFloat128:   "float128",
}

// header is the union of the Analyze 7.5, NIfTI-1 and NIfTI-2 fields we use.
type header struct {
	version    int  // 0 = Analyze 7.5, 1 = NIfTI-1, 2 = NIfTI-2
	single     bool // data in the same file (n+1 / n+2)
	order      binary.ByteOrder
	size       int // header bytes: 348 or 540
	dim        [8]int64
	intentCode int
	datatype   int
	bitpix     int
	pixdim     [8]float64
	voxOffset  float64
	sclSlope   float64
	sclInter   float64
	xyztUnits  int
	calMin     float64
	calMax     float64
	glMax      float64
	glMin      float64
	descrip    string
	qformCode  int
	sformCode  int
	quatern    [3]float64
	qoffset    [3]float64
	srow       [3][4]float64
	origin     [3]int16 // SPM99 Analyze origin (1-based), at byte 253
	notes      []string // fix-ups applied, for Volume.Notes
}

var errNotNifti = errors.New("not a NIfTI-1, NIfTI-2 or Analyze 7.5 header")

// parseHeader decodes the first 348 or 540 bytes of b. It never panics; it reports
// what is wrong in terms a user can act on.
func parseHeader(b []byte) (*header, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w (only %d bytes)", errNotNifti, len(b))
	}
	le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b)
	h := &header{}
	switch {
	case le == 348:
		h.order, h.size = binary.LittleEndian, 348
	case be == 348:
		h.order, h.size = binary.BigEndian, 348
	case le == 540:
		h.order, h.size = binary.LittleEndian, 540
	case be == 540:
		h.order, h.size = binary.BigEndian, 540
	default:
		return nil, fmt.Errorf("%w (sizeof_hdr is %d, want 348 or 540)", errNotNifti, le)
	}
	if len(b) < h.size {
		return nil, fmt.Errorf("truncated header: %d bytes, want %d", len(b), h.size)
	}
	if h.size == 540 {
		if err := h.parse2(b); err != nil {
			return nil, err
		}
	} else {
		h.parse1(b)
	}
	h.fixup()
	return h, nil
}

func (h *header) parse1(b []byte) {
	o := h.order
	i16 := func(off int) int { return int(int16(o.Uint16(b[off:]))) }
	f32 := func(off int) float64 { return float64(math.Float32frombits(o.Uint32(b[off:]))) }
	magic := b[344:348]
	switch {
	case bytes.Equal(magic, []byte("n+1\x00")):
		h.version, h.single = 1, true
	case bytes.Equal(magic, []byte("ni1\x00")):
		h.version = 1
	default:
		h.version = 0 // Analyze 7.5
	}
	for k := 0; k < 8; k++ {
		h.dim[k] = int64(i16(40 + 2*k))
		h.pixdim[k] = f32(76 + 4*k)
	}
	h.datatype = i16(70)
	h.bitpix = i16(72)
	h.voxOffset = f32(108)
	h.sclSlope = f32(112)
	h.sclInter = f32(116)
	h.calMax = f32(124)
	h.calMin = f32(128)
	h.glMax = float64(int32(o.Uint32(b[140:])))
	h.glMin = float64(int32(o.Uint32(b[144:])))
	h.descrip = cString(b[148:228])
	if h.version == 0 {
		for k := 0; k < 3; k++ {
			h.origin[k] = int16(o.Uint16(b[253+2*k:]))
		}
		return
	}
	h.intentCode = i16(68)
	h.xyztUnits = int(b[123])
	h.qformCode = i16(252)
	h.sformCode = i16(254)
	for k := 0; k < 3; k++ {
		h.quatern[k] = f32(256 + 4*k)
		h.qoffset[k] = f32(268 + 4*k)
		for c := 0; c < 4; c++ {
			h.srow[k][c] = f32(280 + 16*k + 4*c)
		}
	}
}

func (h *header) parse2(b []byte) error {
	o := h.order
	f64 := func(off int) float64 { return math.Float64frombits(o.Uint64(b[off:])) }
	i64 := func(off int) int64 { return int64(o.Uint64(b[off:])) }
	i32 := func(off int) int { return int(int32(o.Uint32(b[off:]))) }
	magic := b[4:12]
	switch {
	case bytes.Equal(magic[:4], []byte("n+2\x00")):
		h.version, h.single = 2, true
	case bytes.Equal(magic[:4], []byte("ni2\x00")):
		h.version = 2
	default:
		return fmt.Errorf("%w (sizeof_hdr 540 but magic %q)", errNotNifti, magic[:4])
	}
	h.datatype = int(int16(o.Uint16(b[12:])))
	h.bitpix = int(int16(o.Uint16(b[14:])))
	for k := 0; k < 8; k++ {
		h.dim[k] = i64(16 + 8*k)
		h.pixdim[k] = f64(104 + 8*k)
	}
	h.voxOffset = float64(i64(168))
	h.sclSlope = f64(176)
	h.sclInter = f64(184)
	h.calMax = f64(192)
	h.calMin = f64(200)
	h.descrip = cString(b[240:320])
	h.qformCode = i32(344)
	h.sformCode = i32(348)
	for k := 0; k < 3; k++ {
		h.quatern[k] = f64(352 + 8*k)
		h.qoffset[k] = f64(376 + 8*k)
		for c := 0; c < 4; c++ {
			h.srow[k][c] = f64(400 + 32*k + 8*c)
		}
	}
	h.xyztUnits = i32(500)
	h.intentCode = i32(504)
	return nil
}

// fixup applies nibabel's header checks (fix=True) that change geometry.
func (h *header) fixup() {
	fixed := false
	for k := 1; k <= 3; k++ {
		switch p := h.pixdim[k]; {
		case p == 0:
			h.pixdim[k], fixed = 1, true
		case p < 0:
			h.pixdim[k], fixed = -p, true
		}
	}
	if fixed {
		h.notes = append(h.notes, "header: zero or negative pixdim fixed (0 -> 1, negative -> abs)")
	}
	if h.version == 0 {
		return
	}
	if h.pixdim[0] != 1 && h.pixdim[0] != -1 {
		h.pixdim[0] = 1
	}
	if h.qformCode < 0 || h.qformCode > 5 {
		h.notes = append(h.notes, fmt.Sprintf("header: invalid qform_code %d ignored", h.qformCode))
		h.qformCode = 0
	}
	if h.sformCode < 0 || h.sformCode > 5 {
		h.notes = append(h.notes, fmt.Sprintf("header: invalid sform_code %d ignored", h.sformCode))
		h.sformCode = 0
	}
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// shape returns the spatial size, the number of volumes (product of dims 4..7) and
// checks the dims are sane.
func (h *header) shape() (size [3]int, nvol int64, err error) {
	nd := h.dim[0]
	if nd < 1 || nd > 7 {
		return size, 0, fmt.Errorf("dim[0] = %d, want 1..7", nd)
	}
	nvol = 1
	for k := 1; k <= 7; k++ {
		d := int64(1)
		if int64(k) <= nd {
			d = h.dim[k]
			if d <= 0 {
				return size, 0, fmt.Errorf("dim[%d] = %d, want > 0", k, d)
			}
		}
		if k <= 3 {
			if d > math.MaxInt32 {
				return size, 0, fmt.Errorf("dim[%d] = %d is implausibly large", k, d)
			}
			size[k-1] = int(d)
		} else {
			if d > math.MaxInt32 || nvol > math.MaxInt32 {
				return size, 0, fmt.Errorf("dim[%d] = %d is implausibly large", k, d)
			}
			nvol *= d
		}
	}
	return size, nvol, nil
}

// slopeInter returns the intensity scaling nibabel applies (ok=false: none).
func (h *header) slopeInter() (slope, inter float64, ok bool, err error) {
	s, i := h.sclSlope, h.sclInter
	if h.version == 0 {
		// SPM2 Analyze: funused1/funused2, else from the gl/cal ranges.
		if s != 0 && !math.IsNaN(s) && !math.IsInf(s, 0) {
			if math.IsNaN(i) || math.IsInf(i, 0) {
				i = 0
			}
			return s, i, true, nil
		}
		ur, sr := h.glMax-h.glMin, h.calMax-h.calMin
		if ur != 0 && sr != 0 && !math.IsNaN(sr) && !math.IsInf(sr, 0) {
			s = sr / ur
			return s, h.calMin - s*h.glMin, true, nil
		}
		return 0, 0, false, nil
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, 0, false, nil
	}
	if math.IsNaN(i) || math.IsInf(i, 0) {
		return 0, 0, false, fmt.Errorf("valid scl_slope %g but invalid scl_inter %g", s, i)
	}
	return s, i, true, nil
}
