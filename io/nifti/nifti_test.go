package nifti

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/volume"
)

// testdata returns the path of a fetched test image (see internal/testdata).
func testdata(t testing.TB, rel string) string {
	t.Helper()
	return td.Path(t, rel)
}

// skipLargeUnderRace skips files over 500 KB when the race detector (which slows
// voxel loops ~20x) is on; make test runs every case without it too.
func skipLargeUnderRace(t *testing.T, path string) {
	if st, err := os.Stat(path); raceOn && err == nil && st.Size() > 500<<10 {
		t.Skip("large file: checked without -race")
	}
}

const (
	gonii  = "github.com/okieraised/gonii/test_data/"
	nibDir = "python3-nibabel/usr/lib/python3/dist-packages/nibabel/tests/data/"
	itkDir = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/"
)

func TestReadRealFiles(t *testing.T) {
	cases := []struct {
		file     string
		size     [3]int
		channels int
		dtype    string
		orient   string
		spacing  [3]float64
		note     string // substring expected in Notes
	}{
		{gonii + "int16.nii.gz", [3]int{240, 240, 155}, 1, "int16", "LPS", [3]float64{1, 1, 1}, ""},
		{gonii + "nii2_LR.nii.gz", [3]int{91, 109, 91}, 1, "float32", "LAS", [3]float64{2, 2, 2}, ""},
		{gonii + "nii2_RL.nii.gz", [3]int{91, 109, 91}, 1, "float32", "RAS", [3]float64{2, 2, 2}, ""},
		{gonii + "nii2_mni.nii.gz", [3]int{182, 218, 182}, 1, "float32", "LAS", [3]float64{1, 1, 1}, ""},
		{gonii + "rgb24.nii.gz", [3]int{512, 512, 2}, 3, "rgb24", "", [3]float64{}, "volume 1 of 3"},
		{gonii + "t1.hdr.gz", [3]int{91, 109, 91}, 1, "", "LAS", [3]float64{}, ""},
		{gonii + "t1.img.gz", [3]int{91, 109, 91}, 1, "", "LAS", [3]float64{}, ""},
		{itkDir + "KmeansTest_T1UCharRaw.nii.gz", [3]int{128, 128, 62}, 1, "int16", "LSA", [3]float64{}, ""},
		{nibDir + "anatomical.nii", [3]int{33, 41, 25}, 1, "int16", "", [3]float64{}, ""}, // big endian
		{nibDir + "example4d.nii.gz", [3]int{128, 96, 24}, 1, "int16", "", [3]float64{}, "volume 1 of 2"},
		{nibDir + "example_nifti2.nii.gz", [3]int{32, 20, 12}, 1, "int16", "", [3]float64{}, "volume 1 of 2"},
		{nibDir + "reoriented_anat_moved.nii", [3]int{21, 26, 22}, 1, "float32", "", [3]float64{}, ""},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			skipLargeUnderRace(t, testdata(t, c.file))
			v, err := Read(testdata(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(); err != nil {
				t.Fatal(err)
			}
			if v.Size != c.size || v.Channels != c.channels {
				t.Errorf("size %v x%d, want %v x%d", v.Size, v.Channels, c.size, c.channels)
			}
			if c.dtype != "" && v.DataType != c.dtype {
				t.Errorf("datatype %s, want %s", v.DataType, c.dtype)
			}
			if c.orient != "" && v.Affine.Orientation() != c.orient {
				t.Errorf("orientation %s, want %s (affine %v)", v.Affine.Orientation(), c.orient, v.Affine)
			}
			if c.spacing != [3]float64{} {
				for d, s := range v.Spacing() {
					if math.Abs(s-c.spacing[d]) > 1e-6 {
						t.Errorf("spacing %v, want %v", v.Spacing(), c.spacing)
					}
				}
			}
			if c.note != "" && !strings.Contains(strings.Join(v.Notes, ";"), c.note) {
				t.Errorf("notes %q lack %q", v.Notes, c.note)
			}
			if v.Window[1] <= 0 {
				t.Errorf("window %v", v.Window)
			}
		})
	}
}

// The same brain stored left-right and right-left must be the same image in world space.
func TestLRandRLSameWorld(t *testing.T) {
	lr, err := Read(testdata(t, gonii+"nii2_LR.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	rl, err := Read(testdata(t, gonii+"nii2_RL.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := rl.Affine.Inverse()
	if err != nil {
		t.Fatal(err)
	}
	if lr.Affine == rl.Affine {
		t.Fatal("LR and RL have the same affine: the orientation test proves nothing")
	}
	nonzero, checked := 0, 0
	for k := 0; k < lr.Size[2]; k++ {
		for j := 0; j < lr.Size[1]; j++ {
			for i := 0; i < lr.Size[0]; i++ {
				w := lr.Affine.Apply([3]float64{float64(i), float64(j), float64(k)})
				p := inv.Apply(w)
				var q [3]int
				for d := range p {
					q[d] = int(math.Round(p[d]))
					if math.Abs(p[d]-float64(q[d])) > 1e-4 {
						t.Fatalf("voxel %d,%d,%d maps to non-integer %v", i, j, k, p)
					}
				}
				if !rl.Contains(q[0], q[1], q[2]) {
					t.Fatalf("voxel %d,%d,%d maps outside: %v", i, j, k, q)
				}
				a, b := lr.At(i, j, k, 0), rl.At(q[0], q[1], q[2], 0)
				if a != b {
					t.Fatalf("voxel %d,%d,%d = %v, RL at %v = %v", i, j, k, a, q, b)
				}
				if a != 0 {
					nonzero++
				}
				checked++
			}
		}
	}
	if nonzero < checked/10 {
		t.Errorf("only %d of %d voxels non-zero", nonzero, checked)
	}
}

func TestRoundTrip(t *testing.T) {
	files := []string{gonii + "int16.nii.gz", gonii + "rgb24.nii.gz", gonii + "nii2_LR.nii.gz",
		nibDir + "example4d.nii.gz", nibDir + "anatomical.nii", gonii + "t1.hdr.gz"}
	for _, f := range files {
		for _, ext := range []string{".nii", ".nii.gz"} {
			t.Run(filepath.Base(f)+ext, func(t *testing.T) {
				skipLargeUnderRace(t, testdata(t, f))
				v, err := Read(testdata(t, f))
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "out"+ext)
				if err := WriteVolume(out, v); err != nil {
					t.Fatal(err)
				}
				w, err := Read(out)
				if err != nil {
					t.Fatal(err)
				}
				if w.Size != v.Size || w.Channels != v.Channels {
					t.Fatalf("size %v x%d, want %v x%d", w.Size, w.Channels, v.Size, v.Channels)
				}
				if v.DataType != "" && w.DataType != v.DataType && !(v.DataType == "float64" && w.DataType == "float32") {
					t.Errorf("datatype %s, source %s", w.DataType, v.DataType)
				}
				for r := 0; r < 4; r++ {
					for c := 0; c < 4; c++ {
						// float32 sform: relative 1e-7
						if d := math.Abs(w.Affine[r][c] - v.Affine[r][c]); d > 1e-6*math.Max(1, math.Abs(v.Affine[r][c])) {
							t.Fatalf("affine[%d][%d] %v, want %v", r, c, w.Affine[r][c], v.Affine[r][c])
						}
					}
				}
				for i := range v.Data {
					if w.Data[i] != v.Data[i] {
						t.Fatalf("value %d: %v, want %v", i, w.Data[i], v.Data[i])
					}
				}
			})
		}
	}
}

func TestLabelMapRoundTrip(t *testing.T) {
	v, err := Read(testdata(t, nibDir+"example4d.nii.gz")) // oblique affine
	if err != nil {
		t.Fatal(err)
	}
	for _, maxLabel := range []uint16{1, 255, 256, 1000} {
		m := volume.NewLabelMap(v)
		for i := range m.Data {
			if v.Data[i] > 500 {
				m.Data[i] = uint16(i) % (maxLabel + 1)
			}
		}
		m.Data[len(m.Data)-1] = maxLabel
		out := filepath.Join(t.TempDir(), "lab.nii.gz")
		if err := WriteLabelMap(out, m); err != nil {
			t.Fatal(err)
		}
		w, err := Read(out)
		if err != nil {
			t.Fatal(err)
		}
		want := "uint8"
		if maxLabel > 255 {
			want = "uint16"
		}
		if w.DataType != want {
			t.Errorf("max %d: stored as %s, want %s", maxLabel, w.DataType, want)
		}
		if d := volume.SameGrid(v.Size, v.Affine, w.Size, w.Affine, 1e-4); d != "" {
			t.Errorf("max %d: %s", maxLabel, d)
		}
		for i, l := range m.Data {
			if w.Data[i] != float32(l) {
				t.Fatalf("max %d: label %d = %v, want %d", maxLabel, i, w.Data[i], l)
			}
		}
	}
}

// The qform must reproduce the affine for rotations with either handedness, and
// stay finite for 180° rotations (w = 0).
func TestQformFromAffine(t *testing.T) {
	rot := func(ax int, th float64) [3][3]float64 {
		c, s := math.Cos(th), math.Sin(th)
		m := [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
		i, j := (ax+1)%3, (ax+2)%3
		m[i][i], m[i][j], m[j][i], m[j][j] = c, -s, s, c
		return m
	}
	cases := []struct {
		name string
		r    [3][3]float64
		zoom [3]float64
		flip bool
	}{
		{"identity", rot(0, 0), [3]float64{1, 1, 1}, false},
		{"lps", rot(2, math.Pi), [3]float64{0.5, 0.5, 2}, false},
		{"oblique", rot(0, 0.3), [3]float64{0.9, 0.8, 3}, true},
		{"x180", rot(0, math.Pi), [3]float64{1, 2, 3}, true},
		{"y180", rot(1, math.Pi), [3]float64{1, 2, 3}, false},
	}
	for _, c := range cases {
		a := volume.Identity()
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				a[i][j] = c.r[i][j] * c.zoom[j]
				if c.flip && j == 2 {
					a[i][j] = -a[i][j]
				}
			}
			a[i][3] = float64(10 * (i + 1))
		}
		hb, _ := encodeHeader([3]int{4, 4, 4}, a, dtUint8, 0, "")
		h, err := parseHeader(hb)
		if err != nil {
			t.Fatal(err)
		}
		h.sformCode = 0 // force the qform path
		q, src, err := h.bestAffine([3]int{4, 4, 4})
		if err != nil || src != "qform" {
			t.Fatalf("%s: %v %s", c.name, err, src)
		}
		for i := 0; i < 3; i++ {
			for j := 0; j < 4; j++ {
				if math.Abs(q[i][j]-a[i][j]) > 1e-5 {
					t.Errorf("%s: qform[%d][%d] = %v, want %v", c.name, i, j, q[i][j], a[i][j])
				}
			}
		}
	}
}

// small returns a valid little-endian NIfTI-1 file: 4x3x2 int16, values = index.
func small(t testing.TB) []byte {
	t.Helper()
	v := &volume.Volume{Size: [3]int{4, 3, 2}, Channels: 1, DataType: "int16",
		Affine: volume.Affine{{-1, 0, 0, 10}, {0, 1.5, 0, -5}, {0, 0, 2, 3}, {0, 0, 0, 1}}}
	v.Data = make([]float32, 24)
	for i := range v.Data {
		v.Data[i] = float32(i - 5)
	}
	var b bytes.Buffer
	if err := EncodeVolume(&b, v, false); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestBadInput(t *testing.T) {
	good := small(t)
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	put16 := func(off, v int) func(b []byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], uint16(int16(v))); return b }
	}
	putF := func(off int, v float32) func(b []byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], math.Float32bits(v)); return b }
	}
	huge := mod(func(b []byte) []byte {
		for k := 1; k <= 3; k++ {
			binary.LittleEndian.PutUint16(b[40+2*k:], 32000)
		}
		return b
	})
	big := mod(func(b []byte) []byte { // 1000x1000x1000: plausible, but not from this file
		for k := 1; k <= 3; k++ {
			binary.LittleEndian.PutUint16(b[40+2*k:], 1000)
		}
		return b
	})
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"three bytes", []byte{1, 2, 3}, "not a NIfTI"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"), "not a NIfTI"},
		{"truncated header", good[:200], "truncated header"},
		{"truncated data", good[:len(good)-7], "can hold at most"},
		{"truncated gz", gz(good)[:60], "header"},
		{"corrupt gz", mod(func(b []byte) []byte { return append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2}, b...) }), ""},
		{"huge dims", huge, "exceeds"},
		{"huge dims gz", gz(huge), "exceeds"},
		{"big dims", big, "can hold at most"},
		{"big dims gz", gz(big), "can hold at most"},
		{"negative dim", mod(put16(42, -4)), "dim[1]"},
		{"dim0 zero", mod(put16(40, 0)), "dim[0]"},
		{"dim0 nine", mod(put16(40, 9)), "dim[0]"},
		{"bad datatype", mod(put16(70, 77)), "datatype"},
		{"complex", mod(put16(70, dtComplex64)), "not supported"},
		{"nan sform", mod(putF(280, float32(math.NaN()))), "sform"},
		{"zero sform", mod(func(b []byte) []byte {
			for o := 280; o < 328; o += 4 {
				binary.LittleEndian.PutUint32(b[o:], 0)
			}
			return b
		}), "singular"},
		{"nan pixdim qform", mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[254:], 0) // no sform
			binary.LittleEndian.PutUint32(b[80:], math.Float32bits(float32(math.NaN())))
			return b
		}), "qform"},
		{"bad quaternion", mod(func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[254:], 0)
			binary.LittleEndian.PutUint32(b[256:], math.Float32bits(3))
			return b
		}), "quaternion"},
		{"vox_offset beyond EOF", mod(putF(108, 1e9)), "beyond the end"},
		{"vox_offset nan", mod(putF(108, float32(math.NaN()))), "vox_offset"},
		{"pair header alone", mod(func(b []byte) []byte { copy(b[344:], "ni1\x00"); return b[:348] }), ".img"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes("bad-"+c.name+".nii", c.data)
			if err == nil {
				t.Fatalf("accepted: %v", v.Size)
			}
			msg := err.Error()
			if !strings.Contains(msg, "bad-"+c.name+".nii") {
				t.Errorf("error does not name the file: %v", err)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q lacks %q", msg, c.want)
			}
		})
	}
	// The same checks through Read: the file name in the message, no panic.
	p := filepath.Join(t.TempDir(), "short.nii")
	os.WriteFile(p, good[:len(good)-1], 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Read of a short file: %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.nii")); err == nil {
		t.Error("missing file accepted")
	}
	if v, err := ReadBytes("good.nii", good); err != nil || v.At(3, 2, 1, 0) != 18 {
		t.Errorf("good file: %v", err)
	}
}

// A gzip stream whose header claims far more than the deflate ratio allows is
// refused before anything large is allocated; one that lies only about its data
// length is refused once the data runs out.
func TestGzipDataShorterThanDeclared(t *testing.T) {
	good := small(t)
	b := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(b[46:], 200) // nz 2 -> 200: 4*3*200*2 bytes claimed
	_, err := ReadBytes("liar.nii.gz", gz(b))
	if err == nil || !strings.Contains(err.Error(), "shorter than the header declares") {
		t.Fatalf("got %v", err)
	}
}

func TestWriteRejects(t *testing.T) {
	v := &volume.Volume{Size: [3]int{2, 2, 1}, Channels: 1, Data: make([]float32, 4), Affine: volume.Identity()}
	dir := t.TempDir()
	if err := WriteVolume(filepath.Join(dir, "x.png"), v); err == nil {
		t.Error("wrong extension accepted")
	}
	v.Affine[0][0] = math.NaN()
	if err := WriteVolume(filepath.Join(dir, "x.nii"), v); err == nil {
		t.Error("NaN affine accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.nii")); err == nil {
		t.Error("failed write left a file behind")
	}
}

func TestChooseType(t *testing.T) {
	cases := []struct {
		src  string
		data []float32
		want int
	}{
		{"int16", []float32{-1024, 3000}, dtInt16},
		{"uint8", []float32{0, 255}, dtUint8},
		{"uint8", []float32{-1, 255}, dtInt16},
		{"uint16", []float32{0, 65535}, dtUint16},
		{"int16", []float32{0.5, 2}, dtFloat32},
		{"int16", []float32{0, 70000}, dtInt32},
		{"float32", []float32{1, 2}, dtFloat32},
		{"int64", []float32{1, 2}, dtInt32},
	}
	for _, c := range cases {
		v := &volume.Volume{Channels: 1, DataType: c.src, Data: c.data}
		got, err := chooseType(v, "")
		if err != nil || got != c.want {
			t.Errorf("%s %v: got %s (%v), want %s", c.src, c.data, types[got].name, err, types[c.want].name)
		}
	}
}

func BenchmarkWriteLabelMap512(b *testing.B) {
	m := &volume.LabelMap{Size: [3]int{512, 512, 324}, Affine: volume.Identity()}
	m.Data = make([]uint16, 512*512*324)
	// a head-like label map: a big ellipsoid of 1 with a shell of 2
	for k := 0; k < 324; k++ {
		for j := 0; j < 512; j++ {
			for i := 0; i < 512; i++ {
				x, y, z := float64(i-256)/200, float64(j-256)/230, float64(k-162)/150
				r := x*x + y*y + z*z
				switch {
				case r < 0.8:
					m.Data[i+512*(j+512*k)] = 1
				case r < 1:
					m.Data[i+512*(j+512*k)] = 2
				}
			}
		}
	}
	b.SetBytes(int64(len(m.Data)))
	b.ResetTimer()
	for b.Loop() {
		if err := EncodeLabelMap(io.Discard, m, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadGz(b *testing.B) {
	p := testdata(b, gonii+"int16.nii.gz")
	for b.Loop() {
		if _, err := Read(p); err != nil {
			b.Fatal(err)
		}
	}
}

// RGBA32 and forced datatypes: no real RGBA32 file exists in the test data, so a
// real RGB24 image is written as RGBA32 and read back (alpha dropped).
func TestForcedDataTypes(t *testing.T) {
	if raceOn {
		t.Skip("large files: checked without -race")
	}
	v, err := Read(testdata(t, gonii+"rgb24.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rgba.nii.gz")
	if err := WriteVolume(p, v, DataType("rgba32")); err != nil {
		t.Fatal(err)
	}
	w, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if w.DataType != "rgba32" || w.Channels != 3 || len(w.Data) != len(v.Data) {
		t.Fatalf("%s x%d", w.DataType, w.Channels)
	}
	for i := range v.Data {
		if w.Data[i] != v.Data[i] {
			t.Fatalf("value %d: %v want %v", i, w.Data[i], v.Data[i])
		}
	}
	g, err := Read(testdata(t, gonii+"int16.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []string{"float64", "int32", "uint16", "float32"} {
		p := filepath.Join(t.TempDir(), dt+".nii")
		if err := WriteVolume(p, g, DataType(dt), Description("forced "+dt)); err != nil {
			t.Fatal(err)
		}
		w, err := Read(p)
		if err != nil || w.DataType != dt {
			t.Fatalf("%s: %v %v", dt, err, w)
		}
		for i := range g.Data {
			if w.Data[i] != g.Data[i] {
				t.Fatalf("%s value %d: %v want %v", dt, i, w.Data[i], g.Data[i])
			}
		}
	}
	if err := WriteVolume(filepath.Join(t.TempDir(), "x.nii"), g, DataType("rgb24")); err == nil {
		t.Error("grey volume written as rgb24")
	}
}

// A small gzip file claiming a large volume (within the deflate ratio) is refused
// once its data runs out, without allocating the whole claim up front.
func TestGzipClaimGrowsWithData(t *testing.T) {
	b := small(t)
	binary.LittleEndian.PutUint16(b[42:], 1000) // 1000 x 1000 x 90 int16: 180 MB claimed,
	binary.LittleEndian.PutUint16(b[44:], 1000) // 360 MB as float32
	binary.LittleEndian.PutUint16(b[46:], 90)
	pad := make([]byte, 200<<10) // 200 KB that do not compress: the claim passes the ratio check
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range pad {
		pad[i] = byte(rng.Uint32())
	}
	data := gz(append(b, pad...))
	if len(data) < 190<<10 {
		t.Fatalf("padding compressed to %d bytes", len(data))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadBytes("claims-180MB.nii.gz", data)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "shorter than the header declares") {
		t.Fatalf("got %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 200<<20 {
		t.Errorf("allocated %d MB for a %d-byte file", grew>>20, len(data))
	}
}
