package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	sdicom "github.com/suyashkumar/dicom"
	stag "github.com/suyashkumar/dicom/pkg/tag"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/volume"
)

func data(t testing.TB, rel string) string { return td.Path(t, rel) }

var binaryLE = binary.LittleEndian

const pyd = "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/"
const derived = "derived/dicom/"

func mustRead(t *testing.T, path string) *volume.Volume {
	t.Helper()
	v, err := ReadSeries(path, "")
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v
}

// equalData requires |a-b| <= tol everywhere; a negative tol means lossy: the
// mean |a-b| must stay within -tol instead.
func equalData(t *testing.T, name string, a, b *volume.Volume, tol float32) {
	t.Helper()
	if a.Size != b.Size || a.Channels != b.Channels {
		t.Fatalf("%s: size %v x%d vs %v x%d", name, a.Size, a.Channels, b.Size, b.Channels)
	}
	if tol < 0 {
		var sum float64
		for i := range a.Data {
			sum += math.Abs(float64(a.Data[i] - b.Data[i]))
		}
		if m := sum / float64(len(a.Data)); m > float64(-tol) || m == 0 {
			t.Errorf("%s: mean |difference| %.3g, want in (0, %v] for a lossy copy", name, m, -tol)
		}
		return
	}
	n := 0
	for i := range a.Data {
		if d := a.Data[i] - b.Data[i]; d > tol || d < -tol {
			if n == 0 {
				t.Errorf("%s: voxel %d: %v vs %v", name, i, a.Data[i], b.Data[i])
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d values differ by more than %v", name, n, len(a.Data), tol)
	}
}

// Every transfer syntax of the same image decodes to the same values.
func TestTransferSyntaxesAgree(t *testing.T) {
	cases := []struct {
		ref, other string
		tol        float32
	}{
		{pyd + "MR_small.dcm", pyd + "MR_small_implicit.dcm", 0},
		{pyd + "MR_small.dcm", pyd + "MR_small_bigendian.dcm", 0},
		{pyd + "MR_small.dcm", pyd + "MR_small_expb.dcm", 0},
		{pyd + "MR_small.dcm", pyd + "MR_small_RLE.dcm", 0},
		{pyd + "SC_rgb_rle.dcm", pyd + "SC_rgb_dcmtk_+eb+cr.dcm", -2}, // lossy JPEG of the same picture
		{pyd + "SC_rgb_rle.dcm", pyd + "SC_rgb_rle_2frame.dcm", 0},
		{derived + "axial", derived + "axial_jpegll_sv1", 0},
		{derived + "axial", derived + "axial_jpegll_p14", 0},
		{derived + "axial", derived + "axial_rle", 0},
		{derived + "axial", derived + "axial_bigendian", 0},
		{derived + "axial8", derived + "axial8_bigendian", 0},
		{derived + "axial8", derived + "axial8_deflated", 0},
		{derived + "axial8", derived + "axial8_jpeg_baseline", -1.5},
	}
	for _, c := range cases {
		a := mustRead(t, data(t, c.ref))
		b := mustRead(t, data(t, c.other))
		if b.Size[2] == 2 && a.Size[2] == 1 { // a 2-frame copy: compare frame 1
			b.Size[2], b.Data = 1, b.Data[:len(a.Data)]
		}
		equalData(t, c.other, a, b, c.tol)
		if d := volume.SameGrid(a.Size, a.Affine, b.Size, b.Affine, 1e-6); d != "" {
			t.Errorf("%s: grid differs: %s", c.other, d)
		}
	}
}

// suyashkumar/dicom's own native decoder is a second opinion on raw values.
func TestNativeMatchesSuyashkumar(t *testing.T) {
	for _, rel := range []string{pyd + "MR_small.dcm", pyd + "CT_small.dcm", "github.com/suyashkumar/dicom/testdata/3.dcm"} {
		path := data(t, rel)
		v := mustRead(t, path)
		ds, err := sdicom.ParseFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		slope, inter := 1.0, 0.0
		if e, err := ds.FindElementByTag(stag.RescaleSlope); err == nil {
			slope = parseF(sdicom.MustGetStrings(e.Value)[0])
		}
		if e, err := ds.FindElementByTag(stag.RescaleIntercept); err == nil {
			inter = parseF(sdicom.MustGetStrings(e.Value)[0])
		}
		pe, err := ds.FindElementByTag(stag.PixelData)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := sdicom.MustGetPixelDataInfo(pe.Value).Frames[0].GetNativeFrame()
		if err != nil {
			t.Fatal(err)
		}
		rep := 0
		if e, err := ds.FindElementByTag(stag.PixelRepresentation); err == nil {
			rep = sdicom.MustGetInts(e.Value)[0]
		}
		for y := 0; y < fr.Rows(); y += 7 {
			for x := 0; x < fr.Cols(); x += 5 {
				px, _ := fr.GetPixel(x, y)
				raw := px[0]
				if rep == 1 && fr.BitsPerSample() == 16 {
					raw = int(int16(raw))
				}
				want := float32(float64(raw)*slope + inter)
				if got := v.At(x, y, 0, 0); got != want {
					t.Fatalf("%s (%d,%d): %v, suyashkumar/dicom says %v", rel, x, y, got, want)
				}
			}
		}
	}
}

func parseF(s string) float64 {
	var f float64
	_, _ = fmt.Sscan(strings.TrimSpace(s), &f)
	return f
}

// Geometry of the derived series against what the generator wrote.
func TestDerivedGeometry(t *testing.T) {
	ax := mustRead(t, data(t, derived+"axial"))
	const dx, dz = 0.9570312, 1.5
	ox, oy := -(255*0.95703119999999997)/2, -(255*0.95703119999999997)/2
	want := volume.Affine{{-dx, 0, 0, -ox}, {0, -dx, 0, -oy}, {0, 0, dz, -60}, {0, 0, 0, 1}}
	if d := volume.SameGrid([3]int{256, 256, 108}, want, ax.Size, ax.Affine, 1e-3); d != "" {
		t.Errorf("axial: %s (affine %v)", d, ax.Affine)
	}
	if ax.Modality != "CT" || ax.Window != [2]float64{40, 400} || ax.DataType != "int16" {
		t.Errorf("axial: modality %s window %v datatype %s", ax.Modality, ax.Window, ax.DataType)
	}
	if len(ax.Notes) != 0 {
		t.Errorf("axial: unexpected notes %v", ax.Notes)
	}
	// The enhanced file stores slices 60..83 in reverse order: sorting by position
	// must put them back, so they equal the axial series' slices 60..83.
	mf := mustRead(t, data(t, derived+"multi/enhanced_ct.dcm"))
	plane := 256 * 256
	for k := 0; k < 24; k++ {
		a := ax.Data[(60+k)*plane : (61+k)*plane]
		b := mf.Data[k*plane : (k+1)*plane]
		if !equalF(a, b) {
			t.Fatalf("enhanced frame sorted to k=%d is not axial slice %d", k, 60+k)
		}
	}
	if mf.Affine[2][3] != ax.Affine[2][3]+60*dz {
		t.Errorf("enhanced origin z %v, want %v", mf.Affine[2][3], ax.Affine[2][3]+60*dz)
	}
	// Oblique: same voxels, rotated grid with the same spacing.
	ob := mustRead(t, data(t, derived+"oblique"))
	equalData(t, "oblique", ax, ob, 0)
	sp := ob.Spacing()
	if math.Abs(sp[0]-dx) > 1e-5 || math.Abs(sp[2]-dz) > 1e-5 {
		t.Errorf("oblique spacing %v", sp)
	}
	if ob.Affine[2][1] == 0 || ob.Affine[0][1] == 0 {
		t.Errorf("oblique affine lost its rotation: %v", ob.Affine)
	}
	// Coronal: i left->right (L), j superior->inferior (I), k anterior->posterior (P).
	co := mustRead(t, data(t, derived+"coronal"))
	if o := co.Affine.Orientation(); o != "LIP" || co.Size != [3]int{256, 108, 256} {
		t.Errorf("coronal: orientation %s size %v", o, co.Size)
	}
	// Same world point, same value: voxel (i, j, k) of axial is at coronal (i, 107-k, j).
	for _, p := range [][3]int{{10, 20, 30}, {128, 128, 54}, {200, 17, 99}} {
		a := ax.At(p[0], p[1], p[2], 0)
		c := co.At(p[0], 107-p[2], p[1], 0)
		wa, wc := ax.Affine.Apply([3]float64{float64(p[0]), float64(p[1]), float64(p[2])}),
			co.Affine.Apply([3]float64{float64(p[0]), float64(107 - p[2]), float64(p[1])})
		for d := 0; d < 3; d++ {
			if math.Abs(wa[d]-wc[d]) > 1e-3 {
				t.Errorf("coronal %v: world %v vs axial %v", p, wc, wa)
			}
		}
		if a != c {
			t.Errorf("coronal %v: %v vs axial %v", p, c, a)
		}
	}
}

func equalF(a, b []float32) bool {
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

// copyFiles copies the named files of src into a new temp folder.
func copyFiles(t *testing.T, src string, names []string) string {
	dst := t.TempDir()
	for i, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, strings.Repeat("d", i%2)+n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Gaps, duplicates, non-DICOM files, several series: reported, not hidden.
func TestSeriesProblems(t *testing.T) {
	src := data(t, derived+"axial8")
	var names []string
	for k := 1; k <= 24; k++ {
		names = append(names, "IM"+pad4(k)+".dcm")
	}
	t.Run("gap", func(t *testing.T) {
		dir := copyFiles(t, src, append(append([]string{}, names[:10]...), names[13:]...))
		v := mustRead(t, dir)
		if v.Size[2] != 21 || !hasNote(v, "gap") {
			t.Errorf("size %v notes %v", v.Size, v.Notes)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		dir := copyFiles(t, src, names)
		b, _ := os.ReadFile(filepath.Join(src, names[5]))
		os.WriteFile(filepath.Join(dir, "copy.dcm"), b, 0o644)
		v := mustRead(t, dir)
		if v.Size[2] != 24 || !hasNote(v, "duplicate") {
			t.Errorf("size %v notes %v", v.Size, v.Notes)
		}
	})
	t.Run("non-uniform", func(t *testing.T) {
		dir := copyFiles(t, src, names)
		// Slice 2 sits at z = 1.5; move it to 1.8 (same length, so the header stays valid).
		p := filepath.Join(dir, "d"+names[1])
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, patch(t, b, []byte(`-122.021478\1.5 `), []byte(`-122.021478\1.8 `)), 0o644)
		v := mustRead(t, dir)
		if v.Size[2] != 24 || !hasNote(v, "non-uniform") {
			t.Errorf("size %v notes %v", v.Size, v.Notes)
		}
	})
	t.Run("non-dicom skipped", func(t *testing.T) {
		dir := copyFiles(t, src, names[:4])
		os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not an image"), 0o644)
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		b, _ := os.ReadFile(filepath.Join(src, names[4]))
		os.WriteFile(filepath.Join(dir, "sub", "x.dcm"), b, 0o644) // recursive
		v := mustRead(t, dir)
		if v.Size[2] != 5 || !hasNote(v, "not readable DICOM") {
			t.Errorf("size %v notes %v", v.Size, v.Notes)
		}
	})
	t.Run("several series", func(t *testing.T) {
		dir := copyFiles(t, src, names[:3])
		b, _ := os.ReadFile(data(t, pyd+"MR_small.dcm"))
		os.WriteFile(filepath.Join(dir, "mr.dcm"), b, 0o644)
		_, err := ReadSeries(dir, "")
		var m *MultipleSeriesError
		if !errors.As(err, &m) || len(m.Series) != 2 {
			t.Fatalf("want a MultipleSeriesError with 2 series, got %v", err)
		}
		list, err := ListSeries(dir)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListSeries: %v %v", list, err)
		}
		for _, s := range list {
			v, err := ReadSeries(dir, s.UID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Size[2] != s.Size[2] {
				t.Errorf("series %s: %d slices, listed %d", s.UID, v.Size[2], s.Size[2])
			}
		}
		if _, err := ReadSeries(dir, "1.2.3.nope"); err == nil {
			t.Error("unknown series accepted")
		}
	})
	t.Run("empty folder", func(t *testing.T) {
		if _, err := ReadSeries(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "no files") {
			t.Errorf("got %v", err)
		}
	})
}

func pad4(k int) string { s := "000" + strconv.Itoa(k); return s[len(s)-4:] }

func hasNote(v *volume.Volume, s string) bool {
	for _, n := range v.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// patch returns a copy of b with the first occurrence of old replaced.
func patch(t *testing.T, b []byte, old, new []byte) []byte {
	i := bytes.Index(b, old)
	if i < 0 {
		t.Fatalf("pattern %q not found", old)
	}
	out := append([]byte(nil), b...)
	copy(out[i:], new)
	return out
}

// Bad input gives an error that names the problem, never a panic or a huge allocation.
func TestBadInput(t *testing.T) {
	mr, err := os.ReadFile(data(t, pyd+"MR_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	pixTag := []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0}
	rows := []byte{0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 64, 0}
	ipp := []byte("-83.9063\\-91.2000\\6.6406")
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not DICOM"},
		{"text", []byte("hello, this is not a DICOM file at all, just text......"), "not DICOM"},
		{"truncated header", mr[:300], "truncated"},
		{"truncated pixels", mr[:len(mr)-300], "PixelData holds"},
		{"rows lie", patch(t, mr, rows, []byte{0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 0x60, 0xEA}), "PixelData holds"},
		{"pixel length lies", patch(t, mr, append(pixTag, 0, 0x20, 0, 0), append(pixTag, 0xF0, 0xFF, 0xFF, 0x7F)), "PixelData claims"},
		{"nan position", patch(t, mr, ipp, []byte("NaN     \\-91.2000\\6.6406")), ""},
		{"huge element", patch(t, mr, []byte{0x08, 0x00, 0x08, 0x00, 'C', 'S'}, []byte{0x08, 0x00, 0x08, 0x00, 'U', 'T', 0, 0}), ""},
	}
	for _, c := range cases {
		v, err := ReadBytes(c.name, c.data)
		switch {
		case c.want == "" && err == nil:
			if c.name == "nan position" && !hasNote(v, "no image position") {
				t.Errorf("%s: NaN position accepted silently: notes %v", c.name, v.Notes)
			}
		case c.want == "" && err != nil:
			if !strings.Contains(err.Error(), c.name[:0]) || !strings.HasPrefix(err.Error(), c.name) {
				t.Errorf("%s: error does not name the file: %v", c.name, err)
			}
		case err == nil:
			t.Errorf("%s: accepted, want error containing %q", c.name, c.want)
		case !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), c.name):
			t.Errorf("%s: error %q, want %q naming the file", c.name, err, c.want)
		}
	}
	// JPEG 2000 and JPEG-LS now decode (codec_test.go checks the voxels); a syntax we
	// do not decode (video) is still refused by name.
	for _, f := range []string{"JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm"} {
		if _, err := ReadSeries(data(t, pyd+f), ""); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, uid := range []string{"1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.102"} {
		b := replaceElem(t, mr, 0x0002, 0x0010, "UI", []byte(uid))
		_, err := ReadBytes("video.dcm", b)
		if err == nil || !strings.HasPrefix(err.Error(), "video.dcm") || !strings.Contains(err.Error(), "not supported") || !strings.Contains(err.Error(), uid) {
			t.Errorf("%s: %v", uid, err)
		}
	}
}

// Colour: palette (RLE, multi-frame), RGB, YBR_FULL_422; MONOCHROME1 inversion.
func TestColourAndPhotometric(t *testing.T) {
	pal := mustRead(t, data(t, "octave-dicom/usr/share/octave/packages/dicom-0.5.1/imdata/US-PAL-8-10x-echo.dcm"))
	if pal.Channels != 3 || pal.Size != [3]int{600, 430, 10} || pal.Modality != "US" {
		t.Errorf("palette US: %v x%d %s", pal.Size, pal.Channels, pal.Modality)
	}
	ybr := mustRead(t, data(t, pyd+"SC_ybr_full_422_uncompressed.dcm"))
	rgb := mustRead(t, data(t, pyd+"SC_rgb_rle.dcm"))
	equalData(t, "YBR_FULL_422 vs RGB", rgb, ybr, -1.5) // chroma subsampled: lossy
	// 16- and 32-bit RLE copies of one picture: full-range scaling 65535 <-> 4294967295.
	r16 := mustRead(t, data(t, pyd+"SC_rgb_rle_16bit.dcm"))
	r32 := mustRead(t, data(t, pyd+"SC_rgb_rle_32bit.dcm"))
	for i := range r16.Data {
		if want := float64(r16.Data[i]) * 65537; math.Abs(float64(r32.Data[i])-want) > want*1e-6 {
			t.Fatalf("32-bit RLE value %d: %v, want %v", i, r32.Data[i], want)
		}
	}

	mr, _ := os.ReadFile(data(t, pyd+"MR_small.dcm"))
	m2, err := ReadBytes("m2", mr)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := ReadBytes("m1", patch(t, mr, []byte("MONOCHROME2"), []byte("MONOCHROME1")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m2.Data {
		if m1.Data[i] != -1-m2.Data[i] { // signed, slope 1, intercept 0: v' = -1 - v
			t.Fatalf("MONOCHROME1 voxel %d: %v for %v", i, m1.Data[i], m2.Data[i])
		}
	}
	if m1.Window[0] != -1-m2.Window[0] {
		t.Errorf("MONOCHROME1 window %v, MONOCHROME2 %v", m1.Window, m2.Window)
	}
}

func TestRLEUnpackBits(t *testing.T) {
	cases := []struct {
		in   []byte
		want []byte
	}{
		{[]byte{2, 'a', 'b', 'c'}, []byte("abc")},
		{[]byte{0xFE, 'x'}, []byte("xxx")},
		{[]byte{0x80, 1, 'a', 'b', 0xFF, 'z'}, []byte("abzz")},
		{[]byte{5, 'a'}, []byte("a")}, // literal run past the end: stops, no panic
	}
	for _, c := range cases {
		dst := make([]byte, len(c.want))
		n := unpackBits(c.in, dst)
		if n != len(c.want) || !bytes.Equal(dst[:n], c.want) {
			t.Errorf("%v: %q (%d)", c.in, dst[:n], n)
		}
	}
}

func TestLosslessJPEGRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0xFF, 0xD8}, {0xFF, 0xD8, 0xFF, 0xC3, 0, 11, 16, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0x11, 0}} {
		if _, err := decodeJPEGLossless(b, 1<<20); err == nil {
			t.Errorf("%x accepted", b)
		}
	}
}

func BenchmarkReadSeries(b *testing.B) {
	for _, rel := range []string{derived + "axial", derived + "axial_jpegll_sv1", derived + "big"} {
		path := data(b, rel)
		b.Run(filepath.Base(rel), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ReadSeries(path, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkListSeries(b *testing.B) {
	path := data(b, derived+"big")
	for i := 0; i < b.N; i++ {
		if _, err := ListSeries(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastPath converts one 512x512 int16 frame to float32 (memory already mapped).
func BenchmarkFastPath(b *testing.B) {
	pf := pixelFormat{rows: 512, cols: 512, spp: 1, alloc: 16, stored: 12, high: 11, rep: 0, photo: "MONOCHROME2"}
	raw := make([]byte, 512*512*2)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	out := make([]float32, 512*512)
	f := frameRef{slope: 1, inter: -1024}
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		fastPath(pf, raw, binaryLE, f, out)
	}
}

// 1-bit segmentation frames (bit-packed, LSB first): pydicom counts 36233 set pixels.
func TestOneBitSegmentation(t *testing.T) {
	for _, f := range []string{"liver_1frame.dcm", "liver_expb_1frame.dcm"} {
		v := mustRead(t, data(t, pyd+f))
		var sum float64
		for _, x := range v.Data {
			sum += float64(x)
		}
		if sum != 36233 || v.Size != [3]int{512, 512, 1} {
			t.Errorf("%s: %v set pixels, size %v; pydicom says 36233, 512x512", f, sum, v.Size)
		}
	}
}

// Implicit VR files carry no VRs: integer strings (IS) must still read as numbers.
func TestImplicitVRNumbers(t *testing.T) {
	a, err := ListSeries(data(t, pyd+"MR_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ListSeries(data(t, pyd+"MR_small_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Number != b[0].Number || a[0].Number == 0 || a[0].Size != b[0].Size {
		t.Errorf("explicit %+v, implicit %+v", a[0], b[0])
	}
}
