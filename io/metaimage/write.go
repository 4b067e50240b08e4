package metaimage

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	kzlib "github.com/klauspost/compress/zlib"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/internal/rawio"
	"github.com/medsa/medsa/io/volume"
)

func num(x float64) string {
	if x == 0 {
		x = 0
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// DataPath is the data file a .mhd header names: seg.mhd -> seg.zraw.
func DataPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".zraw"
}

// header writes the fields ITK writes, in its order, for a 3D grid in LPS.
func writeHeader(size [3]int, a volume.Affine, k rawio.Kind, channels int, csize int, dataFile string) string {
	flip := [3]float64{-1, -1, 1}
	sp := a.Spacing()
	var dir, org, spc []string
	for c := 0; c < 3; c++ {
		for r := 0; r < 3; r++ {
			dir = append(dir, num(flip[r]*a[r][c]/sp[c]))
		}
		org = append(org, num(flip[c]*a[c][3]))
		spc = append(spc, num(sp[c]))
	}
	var b strings.Builder
	b.WriteString("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n")
	fmt.Fprintf(&b, "CompressedData = True\nCompressedDataSize = %d\n", csize)
	fmt.Fprintf(&b, "TransformMatrix = %s\nOffset = %s\nCenterOfRotation = 0 0 0\n", strings.Join(dir, " "), strings.Join(org, " "))
	fmt.Fprintf(&b, "AnatomicalOrientation = %s\n", itkOrientation(a))
	fmt.Fprintf(&b, "ElementSpacing = %s\nDimSize = %d %d %d\n", strings.Join(spc, " "), size[0], size[1], size[2])
	if channels > 1 {
		fmt.Fprintf(&b, "ElementNumberOfChannels = %d\n", channels)
	}
	fmt.Fprintf(&b, "ElementType = %s\nElementDataFile = %s\n", metType(k), dataFile)
	return b.String()
}

// itkOrientation is ITK's AnatomicalOrientation code: for each axis the side it
// runs from (ITK's "RAI" is an LPS-identity grid, our "LPS").
func itkOrientation(a volume.Affine) string {
	opp := map[rune]rune{'R': 'L', 'L': 'R', 'A': 'P', 'P': 'A', 'S': 'I', 'I': 'S'}
	return strings.Map(func(r rune) rune { return opp[r] }, a.Orientation())
}

// compress deflates n samples (zlib, as MetaIO writes) produced by fill.
func compress(level, n, unit int, fill func(dst []byte, start, count int)) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := kzlib.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	const chunk = 1 << 20
	tmp := make([]byte, chunk*unit)
	for start := 0; start < n; start += chunk {
		c := min(chunk, n-start)
		fill(tmp[:c*unit], start, c)
		if _, err := zw.Write(tmp[:c*unit]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write stores header and compressed data: attached for .mha, else a .mhd
// header and a .zraw data file, committed together.
func write(path string, size [3]int, a volume.Affine, k rawio.Kind, channels int, data []byte) error {
	l := strings.ToLower(path)
	switch {
	case strings.HasSuffix(l, ".mha"):
		hdr := writeHeader(size, a, k, channels, len(data), "LOCAL")
		return atomicfile.Write(path, func(w io.Writer) error {
			if _, err := io.WriteString(w, hdr); err != nil {
				return err
			}
			_, err := w.Write(data)
			return err
		})
	case strings.HasSuffix(l, ".mhd"):
		// Header and data replace the old pair together (both or neither): a new header over
		// old data, or the reverse, would be a file that lies about its size.
		dp := DataPath(path)
		pd, err := atomicfile.Create(dp, func(w io.Writer) error { _, err := w.Write(data); return err })
		if err != nil {
			return err
		}
		hdr := writeHeader(size, a, k, channels, len(data), filepath.Base(dp))
		ph, err := atomicfile.Create(path, func(w io.Writer) error { _, err := io.WriteString(w, hdr); return err })
		if err != nil {
			pd.Abort()
			return err
		}
		return atomicfile.Commit(pd, ph)
	}
	return fmt.Errorf("a MetaImage file name must end in .mha or .mhd")
}

// WriteLabelMap writes m as a MetaImage (.mha, or .mhd + .zraw): uint8, or
// uint16 past 255 labels, zlib-compressed (CompressedData = True), on m's grid
// in ITK's LPS world.
func WriteLabelMap(path string, m *volume.LabelMap) error {
	if err := checkLabels(m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	k := rawio.LabelKind(m)
	data, err := compress(1, len(m.Data), k.Size(), func(dst []byte, start, count int) {
		rawio.EncodeLabels(dst, m.Data[start:start+count], k, false)
	})
	if err == nil {
		err = write(path, m.Size, m.Affine, k, 1, data)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteVolume writes v as a compressed MetaImage (.mha or .mhd + .zraw): integer
// sources keep an integer type when every value fits, colour is 3 channels.
func WriteVolume(path string, v *volume.Volume) error {
	if err := v.Validate(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	k := rawio.VolumeKind(v)
	data, err := compress(6, len(v.Data), k.Size(), func(dst []byte, start, count int) {
		rawio.Encode(dst, v.Data[start:start+count], k, false)
	})
	if err == nil {
		err = write(path, v.Size, v.Affine, k, v.Channels, data)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func checkLabels(m *volume.LabelMap) error {
	if m == nil {
		return fmt.Errorf("no label map")
	}
	if err := volume.CheckSize(m.Size, 1); err != nil {
		return err
	}
	if len(m.Data) != m.Size[0]*m.Size[1]*m.Size[2] {
		return fmt.Errorf("%d labels for size %v", len(m.Data), m.Size)
	}
	return m.Affine.Validate()
}

// ReadLabelMap reads a MetaImage label map (whole numbers 0..65535, one channel).
func ReadLabelMap(path string) (*volume.LabelMap, error) {
	v, err := Read(path)
	if err != nil {
		return nil, err
	}
	if v.Channels != 1 {
		return nil, fmt.Errorf("read %s: a colour image, not a label map", path)
	}
	m := &volume.LabelMap{Size: v.Size, Affine: v.Affine, Data: make([]uint16, len(v.Data))}
	for i, x := range v.Data {
		if x < 0 || x > 65535 || x != float32(math.Trunc(float64(x))) {
			ii, jj, kk := i%v.Size[0], i/v.Size[0]%v.Size[1], i/(v.Size[0]*v.Size[1])
			return nil, fmt.Errorf("read %s: not a label map: value %v at voxel (%d, %d, %d) (labels are whole numbers 0..65535)", path, x, ii, jj, kk)
		}
		m.Data[i] = uint16(x)
	}
	return m, nil
}
