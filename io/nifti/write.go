package nifti

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/volume"
)

const intentLabel = 1002 // NIFTI_INTENT_LABEL

// Option adjusts how a file is written.
type Option func(*writeOpts)

type writeOpts struct {
	descrip  string
	datatype string
	level    int
}

// Description sets the header's descrip field (at most 79 bytes are kept).
func Description(s string) Option { return func(o *writeOpts) { o.descrip = s } }

// DataType forces the stored datatype of WriteVolume ("uint8", "int16", "uint16",
// "int32", "float32", "float64", ...); values are rounded and clamped to its range.
func DataType(name string) Option { return func(o *writeOpts) { o.datatype = name } }

// Level sets the gzip level (1 fastest .. 9 smallest; default 1 for label maps,
// which are mostly runs, and 6 for images).
func Level(l int) Option { return func(o *writeOpts) { o.level = l } }

// Gzipped reports whether a path asks for compression (.gz suffix).
func Gzipped(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".gz") }

func checkExt(path string) error {
	l := strings.ToLower(path)
	if !strings.HasSuffix(l, ".nii") && !strings.HasSuffix(l, ".nii.gz") {
		return fmt.Errorf("write %s: a NIfTI file name must end in .nii or .nii.gz", path)
	}
	return nil
}

// WriteVolume writes v as a single-file NIfTI-1 (.nii or .nii.gz), atomically.
// An integer source keeps its datatype when every value is integral and fits (else
// int16/int32 when they fit, else float32); colour volumes are stored as RGB24.
// sform and qform (code 1, scanner) both carry v.Affine.
func WriteVolume(path string, v *volume.Volume, opts ...Option) error {
	if err := checkExt(path); err != nil {
		return err
	}
	gz := Gzipped(path)
	return atomicfile.Write(path, func(w io.Writer) error {
		return EncodeVolume(w, v, gz, opts...)
	})
}

// WriteLabelMap writes a label map as NIfTI-1 (uint8, or uint16 past 255),
// atomically, with the source's affine in both sform and qform.
func WriteLabelMap(path string, m *volume.LabelMap, opts ...Option) error {
	p, err := CreateLabelMap(path, m, opts...)
	if err != nil {
		return err
	}
	return atomicfile.Commit(p)
}

// CreateLabelMap writes what WriteLabelMap writes to a temporary file next to
// path, for atomicfile.Commit with the files that go with it (a sidecar).
func CreateLabelMap(path string, m *volume.LabelMap, opts ...Option) (*atomicfile.Pending, error) {
	if err := checkExt(path); err != nil {
		return nil, err
	}
	o, err := labelOpts(m, opts)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if !Gzipped(path) {
		return atomicfile.Create(path, func(w io.Writer) error {
			return encodeLabels(w, m, false, o, labelType(m))
		})
	}
	// Most masks fit uint8: encode them so without a separate pass over the map,
	// and start again as uint16 if a label > 255 turns up.
	p, err := atomicfile.Create(path, func(w io.Writer) error {
		return encodeLabels(w, m, true, o, dtUint8)
	})
	if errors.Is(err, errWideLabel) {
		p, err = atomicfile.Create(path, func(w io.Writer) error {
			return encodeLabels(w, m, true, o, dtUint16)
		})
	}
	return p, err
}

var typeCodes = map[string]int{}

func init() {
	for code, t := range types {
		typeCodes[t.name] = code
	}
}

type intRange struct{ lo, hi float64 }

var intRanges = map[int]intRange{
	dtUint8: {0, 255}, dtInt8: {-128, 127}, dtInt16: {-32768, 32767}, dtUint16: {0, 65535},
	dtInt32: {-2147483648, 2147483647}, dtUint32: {0, 4294967295},
	dtInt64: {-9.2e18, 9.2e18}, dtUint64: {0, 1.8e19},
}

// chooseType picks the stored datatype for v (see WriteVolume).
func chooseType(v *volume.Volume, forced string) (int, error) {
	if forced != "" {
		code, ok := typeCodes[forced]
		if !ok {
			return 0, fmt.Errorf("unknown datatype %q", forced)
		}
		if types[code].channels != v.Channels {
			return 0, fmt.Errorf("datatype %s has %d channels, the volume %d", forced, types[code].channels, v.Channels)
		}
		return code, nil
	}
	if v.Channels == 3 {
		return dtRGB24, nil
	}
	src, ok := typeCodes[v.DataType]
	if !ok || !types[src].integer {
		return dtFloat32, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v.Data {
		f := float64(x)
		if f != math.Trunc(f) { // also catches NaN and Inf
			return dtFloat32, nil
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if src == dtInt64 || src == dtUint64 {
		src = dtInt32 // 64-bit integers upset many tools; float32 data fits int32 or not at all
	}
	for _, c := range []int{src, dtInt16, dtInt32} {
		if r := intRanges[c]; lo >= r.lo && hi <= r.hi {
			return c, nil
		}
	}
	return dtFloat32, nil
}

// EncodeVolume writes v as a single-file NIfTI-1 stream (gzipped when gz).
func EncodeVolume(w io.Writer, v *volume.Volume, gz bool, opts ...Option) error {
	o := writeOpts{level: 6}
	for _, f := range opts {
		f(&o)
	}
	if err := v.Validate(); err != nil {
		return err
	}
	dt, err := chooseType(v, o.datatype)
	if err != nil {
		return err
	}
	hdr, err := encodeHeader(v.Size, v.Affine, dt, 0, o.descrip)
	if err != nil {
		return err
	}
	ti := types[dt]
	per := v.Channels
	return writeStream(w, gz, o.level, hdr, v.NumVoxels()*ti.size, ti.size, func(dst []byte, start int) {
		n := len(dst) / ti.size
		encodeValues(dst, v.Data[start/ti.size*per:(start/ti.size+n)*per], dt)
	}, nil)
}

// EncodeLabelMap writes a label map as a single-file NIfTI-1 stream.
func EncodeLabelMap(w io.Writer, m *volume.LabelMap, gz bool, opts ...Option) error {
	o, err := labelOpts(m, opts)
	if err != nil {
		return err
	}
	return encodeLabels(w, m, gz, o, labelType(m))
}

// errWideLabel stops a speculative uint8 encoding that met a label > 255.
var errWideLabel = errors.New("label above 255 in a uint8 encoding")

func labelOpts(m *volume.LabelMap, opts []Option) (writeOpts, error) {
	o := writeOpts{level: 1}
	for _, f := range opts {
		f(&o)
	}
	if err := volume.CheckSize(m.Size, 1); err != nil {
		return o, fmt.Errorf("label map: %w", err)
	}
	if len(m.Data) != m.Size[0]*m.Size[1]*m.Size[2] {
		return o, fmt.Errorf("label map: %d labels for size %v", len(m.Data), m.Size)
	}
	if err := m.Affine.Validate(); err != nil {
		return o, fmt.Errorf("label map: %w", err)
	}
	return o, nil
}

func labelType(m *volume.LabelMap) int {
	if fitsUint8(m.Data) {
		return dtUint8
	}
	return dtUint16
}

// encodeLabels writes m with datatype dt. With gzip and uint8, dt may be a guess:
// the run coder checks every label and fails with errWideLabel on one > 255 (the
// fallback encoder for run-poor chunks is reached only after that check).
func encodeLabels(w io.Writer, m *volume.LabelMap, gz bool, o writeOpts, dt int) error {
	hdr, err := encodeHeader(m.Size, m.Affine, dt, intentLabel, o.descrip)
	if err != nil {
		return err
	}
	ti := types[dt]
	var runs []uint16 // masks are runs: code them straight from the labels
	if dt == dtUint8 {
		runs = m.Data
	}
	return writeStream(w, gz, o.level, hdr, len(m.Data)*ti.size, ti.size, func(dst []byte, start int) {
		src := m.Data[start/ti.size : start/ti.size+len(dst)/ti.size]
		if dt == dtUint8 {
			narrow(dst, src)
			return
		}
		for i, l := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], l)
		}
	}, runs)
}

// writeStream writes the header and total bytes of voxel data produced chunk by
// chunk by fill(dst, offset) (offsets multiples of unit, the voxel size), through
// the parallel gzip writer when gz. fill may be called from several goroutines.
// labels, when set, is a uint8 label map the gzip writer run-codes directly.
func writeStream(w io.Writer, gz bool, level int, hdr []byte, total, unit int, fill func(dst []byte, start int), labels []uint16) error {
	if gz {
		return writeGzipParallel(w, level, gzSource{hdr: hdr, total: total, unit: unit, fill: fill, labels: labels})
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	chunk := (1 << 20) / unit * unit
	buf := make([]byte, min(chunk, total))
	for start := 0; start < total; {
		n := min(len(buf), total-start)
		fill(buf[:n], start)
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// encodeValues rounds and clamps values into datatype dt, little endian.
func encodeValues(dst []byte, src []float32, dt int) {
	round := func(x float32, r intRange) float64 {
		f := math.RoundToEven(float64(x))
		if math.IsNaN(f) {
			return 0
		}
		return math.Max(r.lo, math.Min(r.hi, f))
	}
	le := binary.LittleEndian
	switch dt {
	case dtUint8, dtRGB24:
		r := intRanges[dtUint8]
		for i, x := range src {
			dst[i] = byte(round(x, r))
		}
	case dtInt8:
		for i, x := range src {
			dst[i] = byte(int8(round(x, intRanges[dtInt8])))
		}
	case dtRGBA32:
		for i := 0; i < len(src)/3; i++ {
			for c := 0; c < 3; c++ {
				dst[4*i+c] = byte(round(src[3*i+c], intRanges[dtUint8]))
			}
			dst[4*i+3] = 255
		}
	case dtInt16:
		// Fast path: converted CT is integral HU already; only other values pay for rounding.
		r := intRanges[dtInt16]
		for i, x := range src {
			n := int32(x)
			if float32(n) != x || n < -32768 || n > 32767 {
				n = int32(round(x, r))
			}
			le.PutUint16(dst[2*i:], uint16(int16(n)))
		}
	case dtUint16:
		r := intRanges[dtUint16]
		for i, x := range src {
			n := int32(x)
			if float32(n) != x || n < 0 || n > 65535 {
				n = int32(round(x, r))
			}
			le.PutUint16(dst[2*i:], uint16(n))
		}
	case dtInt32:
		r := intRanges[dtInt32]
		for i, x := range src {
			le.PutUint32(dst[4*i:], uint32(int32(round(x, r))))
		}
	case dtUint32:
		r := intRanges[dtUint32]
		for i, x := range src {
			le.PutUint32(dst[4*i:], uint32(round(x, r)))
		}
	case dtInt64:
		for i, x := range src {
			le.PutUint64(dst[8*i:], uint64(int64(round(x, intRanges[dtInt64]))))
		}
	case dtUint64:
		for i, x := range src {
			le.PutUint64(dst[8*i:], uint64(round(x, intRanges[dtUint64])))
		}
	case dtFloat32:
		for i, x := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case dtFloat64:
		for i, x := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(x)))
		}
	}
}

// encodeHeader builds a little-endian NIfTI-1 single-file header plus the 4-byte
// extension flag (352 bytes; data follows at vox_offset 352).
func encodeHeader(size [3]int, a volume.Affine, dt, intent int, descrip string) ([]byte, error) {
	for d, n := range size {
		if n < 1 || n > 32767 {
			return nil, fmt.Errorf("dimension %d is %d: NIfTI-1 holds 1..32767 per axis (save a large 2D image's mask as PNG)", d, n)
		}
	}
	b := make([]byte, 352)
	le := binary.LittleEndian
	f32 := func(off int, v float64) { le.PutUint32(b[off:], math.Float32bits(float32(v))) }
	i16 := func(off, v int) { le.PutUint16(b[off:], uint16(int16(v))) }
	le.PutUint32(b[0:], 348)
	b[38] = 'r' // "regular", as nibabel writes
	dims := [8]int{3, size[0], size[1], size[2], 1, 1, 1, 1}
	for k, d := range dims {
		i16(40+2*k, d)
	}
	i16(68, intent)
	i16(70, dt)
	i16(72, types[dt].size*8)
	quat, qfac, zooms, off := qformParams(a)
	pix := [8]float64{qfac, zooms[0], zooms[1], zooms[2], 1, 1, 1, 1}
	for k, p := range pix {
		f32(76+4*k, p)
	}
	f32(108, 352) // vox_offset
	f32(112, 1)   // scl_slope
	f32(116, 0)   // scl_inter
	b[123] = 2    // xyzt_units: mm
	if descrip == "" {
		descrip = "medsa"
	}
	copy(b[148:227], descrip)
	i16(252, 1) // qform_code: scanner
	i16(254, 1) // sform_code: scanner
	for k := 0; k < 3; k++ {
		f32(256+4*k, quat[k])
		f32(268+4*k, off[k])
		for c := 0; c < 4; c++ {
			f32(280+16*k+4*c, a[k][c])
		}
	}
	copy(b[344:], "n+1\x00")
	return b, nil
}
