package dicom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// Issue 14: headers that lie must give a correct volume with a note, or a clear error;
// never a panic, a silently wrong image or an allocation the file cannot justify.

// elemLE encodes one explicit-VR little-endian element with a short (2-byte) length.
func elemLE(g, e uint16, vr string, val []byte) []byte {
	if len(val)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" || vr == "OB" {
			pad = 0
		}
		val = append(append([]byte(nil), val...), pad)
	}
	b := binary.LittleEndian.AppendUint16(nil, g)
	b = binary.LittleEndian.AppendUint16(b, e)
	b = append(b, vr...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

// tagBytes is how tag (g,e) starts in an explicit little-endian file.
func tagBytes(g, e uint16, vr string) []byte {
	return append([]byte{byte(g), byte(g >> 8), byte(e), byte(e >> 8)}, vr...)
}

// insertBefore inserts ins in front of the first occurrence of at.
func insertBefore(t testing.TB, b, at, ins []byte) []byte {
	t.Helper()
	i := bytes.Index(b, at)
	if i < 0 {
		t.Fatalf("pattern %q not found", at)
	}
	return append(append(append([]byte(nil), b[:i]...), ins...), b[i:]...)
}

// replaceElem replaces the value of the first explicit-LE short-length element (g,e),
// keeping the file consistent (top-level elements only).
func replaceElem(t testing.TB, b []byte, g, e uint16, vr string, val []byte) []byte {
	t.Helper()
	i := bytes.Index(b, tagBytes(g, e, vr))
	if i < 0 {
		t.Fatalf("element (%04X,%04X) %s not found", g, e, vr)
	}
	n := int(binary.LittleEndian.Uint16(b[i+6:]))
	return append(append(append([]byte(nil), b[:i]...), elemLE(g, e, vr, val)...), b[i+8+n:]...)
}

// tinyDICOM builds a minimal explicit-LE CT file with rows x cols 16-bit pixels, the given
// NumberOfFrames and exactly pixBytes bytes of PixelData.
func tinyDICOM(rows, cols int, frames string, pixBytes int) []byte {
	meta := elemLE(0x0002, 0x0010, "UI", []byte(tsExplicitLE))
	b := make([]byte, 128)
	b = append(b, "DICM"...)
	b = append(b, elemLE(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))...)
	b = append(b, meta...)
	b = append(b, elemLE(0x0008, 0x0060, "CS", []byte("CT"))...)
	b = append(b, elemLE(0x0020, 0x000E, "UI", []byte("1.2.3.4"))...)
	b = append(b, elemLE(0x0028, 0x0002, "US", binary.LittleEndian.AppendUint16(nil, 1))...)
	b = append(b, elemLE(0x0028, 0x0004, "CS", []byte("MONOCHROME2"))...)
	if frames != "" {
		b = append(b, elemLE(0x0028, 0x0008, "IS", []byte(frames))...)
	}
	b = append(b, elemLE(0x0028, 0x0010, "US", binary.LittleEndian.AppendUint16(nil, uint16(rows)))...)
	b = append(b, elemLE(0x0028, 0x0011, "US", binary.LittleEndian.AppendUint16(nil, uint16(cols)))...)
	b = append(b, elemLE(0x0028, 0x0100, "US", binary.LittleEndian.AppendUint16(nil, 16))...)
	b = append(b, elemLE(0x0028, 0x0101, "US", binary.LittleEndian.AppendUint16(nil, 16))...)
	b = append(b, elemLE(0x0028, 0x0102, "US", binary.LittleEndian.AppendUint16(nil, 15))...)
	b = append(b, elemLE(0x0028, 0x0103, "US", binary.LittleEndian.AppendUint16(nil, 1))...)
	b = append(b, 0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(pixBytes))
	return append(b, make([]byte, pixBytes)...)
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestNumberOfFramesLies(t *testing.T) {
	ct, err := os.ReadFile(data(t, pyd+"CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ReadBytes("CT_small.dcm", ct)
	if err != nil {
		t.Fatal(err)
	}
	rows := tagBytes(0x0028, 0x0010, "US")
	for _, n := range []string{"-1", "-2", "-5", "-2147483648", "0"} {
		t.Run(n, func(t *testing.T) {
			b := insertBefore(t, ct, rows, elemLE(0x0028, 0x0008, "IS", []byte(n)))
			v, err := ReadBytes("lying.dcm", b)
			if err != nil {
				t.Fatalf("NumberOfFrames %s: %v", n, err)
			}
			equalData(t, "NumberOfFrames "+n, v, ref, 0)
			if !hasNote(v, "NumberOfFrames is "+n) {
				t.Errorf("no note about the lying NumberOfFrames: %v", v.Notes)
			}
		})
	}
	// One such file inside a real 108-file series: the series still loads, whole and in order.
	t.Run("in a series", func(t *testing.T) {
		src := data(t, derived+"axial")
		names := listDir(t, src)
		dir := copyFiles(t, src, names)
		full := mustRead(t, src)
		p := filepath.Join(dir, strings.Repeat("d", 7%2)+names[7])
		b, _ := os.ReadFile(p)
		// This series is implicit VR: tag, 4-byte length, value.
		ins := append([]byte{0x28, 0x00, 0x08, 0x00, 2, 0, 0, 0}, "-3"...)
		os.WriteFile(p, insertBefore(t, b, []byte{0x28, 0x00, 0x10, 0x00, 2, 0, 0, 0}, ins), 0o644)
		v := mustRead(t, dir)
		equalData(t, "series", v, full, 0)
	})
}

// A file of kilobytes that claims a million frames is refused before anything per frame
// is allocated.
func TestFrameCountBomb(t *testing.T) {
	one := tinyDICOM(1, 1, "1048576", 2)
	var err error
	got := allocDuring(func() { _, err = ReadBytes("bomb.dcm", one) })
	if err == nil || !strings.Contains(err.Error(), "PixelData holds 2 bytes") {
		t.Fatalf("got %v", err)
	}
	t.Logf("one %d-byte file claiming 1048576 frames: %d KB allocated before the error", len(one), got>>10)
	if got > 4<<20 {
		t.Errorf("a %d-byte file allocated %d MB before its error", len(one), got>>20)
	}
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("b%d.dcm", i)), one, 0o644)
	}
	got = allocDuring(func() { _, err = ReadSeries(dir, "") })
	if err == nil || !strings.Contains(err.Error(), "need") {
		t.Fatalf("series of bombs: %v", err)
	}
	t.Logf("ten such files: %d KB allocated before the error", got>>10)
	if got > 16<<20 {
		t.Errorf("ten %d-byte files allocated %d MB before the error", len(one), got>>20)
	}
	// The volume itself is held to the memory budget.
	defer volume.SetMemoryLimit(1<<19, "test")()
	if _, err := ReadBytes("big.dcm", tinyDICOM(512, 512, "", 512*512*2)); err == nil || !strings.Contains(err.Error(), "needs 1 MB of memory") {
		t.Errorf("over the budget: %v", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// One file without ImagePositionPatient must not make the reader stack the whole series
// in file-name order: the positions of the others still decide.
func TestMissingPositionInSeries(t *testing.T) {
	src := data(t, derived+"axial")
	names := listDir(t, src)
	full := mustRead(t, src)
	dir := copyFiles(t, src, names)
	odd := strings.Repeat("d", 40%2) + names[40]
	p := filepath.Join(dir, odd)
	b, _ := os.ReadFile(p)
	// Renumber (0020,0032) to the unused (0020,0033): the element is gone, the file stays valid.
	i := bytes.Index(b, []byte{0x20, 0x00, 0x32, 0x00}) // implicit VR
	if i < 0 {
		t.Fatal("no ImagePositionPatient")
	}
	b[i+2] = 0x33
	os.WriteFile(p, b, 0o644)
	v := mustRead(t, dir)
	if v.Size[2] != full.Size[2]-1 {
		t.Fatalf("%d slices, want %d", v.Size[2], full.Size[2]-1)
	}
	if !hasNote(v, odd) || !hasNote(v, "left out 1 of 108") {
		t.Errorf("the odd file is not named: %v", v.Notes)
	}
	// Every slice of the result is a slice of the original at the same world position.
	plane := v.Size[0] * v.Size[1]
	for k := 0; k < v.Size[2]; k++ {
		w := v.Affine.Apply([3]float64{0, 0, float64(k)})
		kk := -1
		for j := 0; j < full.Size[2]; j++ {
			if u := full.Affine.Apply([3]float64{0, 0, float64(j)}); math.Abs(u[2]-w[2]) < 1e-3 {
				kk = j
			}
		}
		if kk < 0 {
			// the affine interpolates across the left-out slice: its neighbours stay exact
			continue
		}
		if !equalFloats(v.Data[k*plane:(k+1)*plane], full.Data[kk*plane:(kk+1)*plane]) {
			t.Fatalf("slice %d (z %.2f) is not the original slice %d", k, w[2], kk)
		}
	}
	if v.Affine[2][3] != full.Affine[2][3] {
		t.Errorf("origin z %v, want %v", v.Affine[2][3], full.Affine[2][3])
	}
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cutFirstFragment halves the first pixel fragment of an encapsulated file (after the
// basic offset table) and ends the sequence there, keeping the file well formed.
func cutFirstFragment(t testing.TB, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	if i < 0 {
		t.Fatal("no encapsulated PixelData")
	}
	p := i + 12
	if binary.LittleEndian.Uint32(b[p:]) != 0xE000FFFE {
		t.Fatal("no offset table item")
	}
	p += 8 + int(binary.LittleEndian.Uint32(b[p+4:]))
	n := int(binary.LittleEndian.Uint32(b[p+4:]))
	cut := (n / 2) &^ 1
	out := append([]byte(nil), b[:p+8+cut]...)
	binary.LittleEndian.PutUint32(out[p+4:], uint32(cut))
	return append(out, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
}

func TestTruncatedFragment(t *testing.T) {
	for _, dir := range []string{"axial_jpegll_sv1", "axial_jpegll_p14", "axial8_jpeg_baseline", "axial_rle"} {
		t.Run(dir, func(t *testing.T) {
			src := data(t, derived+dir)
			p := filepath.Join(src, listDir(t, src)[0])
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ReadBytes("whole.dcm", b); err != nil {
				t.Fatalf("the intact file: %v", err)
			}
			v, err := ReadBytes("cut.dcm", cutFirstFragment(t, b))
			if err == nil {
				t.Fatalf("a fragment cut in half decoded without an error (notes %v)", v.Notes)
			}
			if !strings.HasPrefix(err.Error(), "cut.dcm") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

// Header values the reader has to replace are reported, not silently fixed.
func TestReplacedValuesNoted(t *testing.T) {
	ct, err := os.ReadFile(data(t, pyd+"CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		g, e uint16
		vr   string
		val  string
		note string
	}{
		{"spacing zero", 0x0028, 0x0030, "DS", `0\0`, "PixelSpacing"},
		{"spacing nan", 0x0028, 0x0030, "DS", `NaN\NaN`, "PixelSpacing"},
		{"spacing negative", 0x0028, 0x0030, "DS", `-1\0.5`, "PixelSpacing"},
		{"slope zero", 0x0028, 0x1053, "DS", `0`, "RescaleSlope"},
		{"slope inf", 0x0028, 0x1053, "DS", `Inf`, "RescaleSlope"},
		{"slope nan", 0x0028, 0x1053, "DS", `NaN`, "RescaleSlope"},
		{"collinear orientation", 0x0020, 0x0037, "DS", `1\0\0\1\0\0`, "not two orthogonal unit vectors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes(c.name, replaceElem(t, ct, c.g, c.e, c.vr, []byte(c.val)))
			if err != nil {
				t.Fatal(err)
			}
			if !hasNote(v, c.note) {
				t.Errorf("no note naming %q: %v", c.note, v.Notes)
			}
		})
	}
	// One slice of a series with another PixelSpacing.
	src := data(t, derived+"axial8")
	names := listDir(t, src)
	dir := copyFiles(t, src, names)
	p := filepath.Join(dir, strings.Repeat("d", 3%2)+names[3])
	b, _ := os.ReadFile(p)
	i := bytes.Index(b, []byte{0x28, 0x00, 0x30, 0x00})
	if i < 0 {
		t.Fatal("no PixelSpacing")
	}
	// Implicit VR: tag, 4-byte length, value. Keep the length; change the first digit.
	val := b[i+8 : i+8+int(binary.LittleEndian.Uint32(b[i+4:]))]
	full := mustRead(t, src)
	for j := range val {
		if val[j] >= '1' && val[j] <= '8' {
			val[j]++
			break
		}
	}
	os.WriteFile(p, b, 0o644)
	v := mustRead(t, dir)
	if !hasNote(v, "PixelSpacing differs in 1 frame") {
		t.Errorf("a slice with another spacing passed silently: %v", v.Notes)
	}
	if v.Affine != full.Affine {
		t.Errorf("the odd slice changed the affine: %v vs %v", v.Affine, full.Affine)
	}
}

// An unknown transfer syntax is named as such, not reported as a parse error.
func TestUnknownTransferSyntax(t *testing.T) {
	for _, f := range []string{pyd + "CT_small.dcm", derived + "axial8/IM0001.dcm"} {
		b, err := os.ReadFile(data(t, f))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, tagBytes(0x0002, 0x0010, "UI"))
		n := int(binary.LittleEndian.Uint16(b[i+6:]))
		uid := []byte("1.2.840.99999.7.7.7.7.7.7.7.7.7.7.7")[:n]
		copy(b[i+8:], uid)
		_, err = ReadBytes("odd.dcm", b)
		if err == nil || !strings.Contains(err.Error(), "transfer syntax") || !strings.Contains(err.Error(), string(bytes.TrimRight(uid, "\x00"))) {
			t.Errorf("%s: %v", f, err)
		}
	}
}
