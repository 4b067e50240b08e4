package nrrd

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/internal/rawio"
	"github.com/medsa/medsa/io/volume"
)

// num writes a number exactly (the shortest text that reads back the same
// float64), without a negative zero.
func num(x float64) string {
	if x == 0 {
		x = 0
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// lpsGeometry writes the affine as LPS space directions and origin (NRRD's,
// ITK's and Slicer's usual space), exactly.
func lpsGeometry(a volume.Affine) (dirs []string, origin string) {
	flip := [3]float64{-1, -1, 1}
	for c := 0; c < 3; c++ {
		dirs = append(dirs, fmt.Sprintf("(%s,%s,%s)", num(flip[0]*a[0][c]), num(flip[1]*a[1][c]), num(flip[2]*a[2][c])))
	}
	origin = fmt.Sprintf("(%s,%s,%s)", num(flip[0]*a[0][3]), num(flip[1]*a[1][3]), num(flip[2]*a[2][3]))
	return dirs, origin
}

type kv struct{ k, v string }

// writeHeader writes an attached gzip NRRD header for a 3D grid, with an
// optional leading channel axis and key/value pairs.
func writeHeader(w io.Writer, k rawio.Kind, size [3]int, channels int, a volume.Affine, pairs []kv) error {
	dirs, origin := lpsGeometry(a)
	var b strings.Builder
	b.WriteString("NRRD0004\n# Complete NRRD file format specification at:\n# http://teem.sourceforge.net/nrrd/format.html\n")
	fmt.Fprintf(&b, "type: %s\n", typeName(k))
	if channels > 1 {
		fmt.Fprintf(&b, "dimension: 4\nspace: left-posterior-superior\nsizes: %d %d %d %d\n", channels, size[0], size[1], size[2])
		fmt.Fprintf(&b, "space directions: none %s\nkinds: RGB-color domain domain domain\n", strings.Join(dirs, " "))
	} else {
		fmt.Fprintf(&b, "dimension: 3\nspace: left-posterior-superior\nsizes: %d %d %d\n", size[0], size[1], size[2])
		fmt.Fprintf(&b, "space directions: %s\nkinds: domain domain domain\n", strings.Join(dirs, " "))
	}
	if k.Size() > 1 {
		b.WriteString("endian: little\n")
	}
	fmt.Fprintf(&b, "encoding: gzip\nspace origin: %s\n", origin)
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s:=%s\n", p.k, oneLine(p.v))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps a key/value on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// gzipBody compresses n samples produced chunk by chunk by fill.
func gzipBody(w io.Writer, level int, n, unit int, fill func(dst []byte, start, count int)) error {
	zw, err := kgzip.NewWriterLevel(w, level)
	if err != nil {
		return err
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk*unit)
	for start := 0; start < n; start += chunk {
		c := min(chunk, n-start)
		fill(buf[:c*unit], start, c)
		if _, err := zw.Write(buf[:c*unit]); err != nil {
			return err
		}
	}
	return zw.Close()
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

// WriteLabelMap writes m as an attached, gzip-encoded NRRD (uint8, or uint16
// past 255 labels) in LPS space on m's grid, atomically.
func WriteLabelMap(path string, m *volume.LabelMap) error {
	return writeLabels(path, m, nil)
}

func writeLabels(path string, m *volume.LabelMap, pairs []kv) error {
	if err := checkLabels(m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	k := rawio.LabelKind(m)
	err := atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := writeHeader(bw, k, m.Size, 1, m.Affine, pairs); err != nil {
			return err
		}
		// level 1: label maps are mostly long runs
		err := gzipBody(bw, 1, len(m.Data), k.Size(), func(dst []byte, start, count int) {
			rawio.EncodeLabels(dst, m.Data[start:start+count], k, false)
		})
		if err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteVolume writes v as an attached gzip NRRD in LPS space: integer sources
// keep an integer type when every value fits (see rawio.VolumeKind), colour
// images get a leading RGB-color axis.
func WriteVolume(path string, v *volume.Volume) error {
	if err := v.Validate(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	k := rawio.VolumeKind(v)
	err := atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := writeHeader(bw, k, v.Size, v.Channels, v.Affine, nil); err != nil {
			return err
		}
		if err := gzipBody(bw, 6, len(v.Data), k.Size(), func(dst []byte, start, count int) {
			rawio.Encode(dst, v.Data[start:start+count], k, false)
		}); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// finite reports a usable number.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
