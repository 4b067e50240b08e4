package dicomseg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/volume"
)

// requireTool skips (or, under make, fails) when an outside referee is missing.
func requireTool(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("MEDSA_REQUIRE_TESTDATA") != "" {
		t.Fatalf("%s missing", what)
	}
	t.Skipf("%s missing", what)
}

// The sample SEGs of pydicom (made by dcmqi) and ami.js. Their source series are
// not available, so they are parsed and checked for segments, frames, positions
// and pixels (counts from pydicom 2.3's pixel_array), then placed on a source
// rebuilt from their own frame positions: that exercises placement, not a fit
// to the real images.
func TestSampleSEGs(t *testing.T) {
	pd := "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/"
	cases := []struct {
		rel      string
		segs     int
		name     string
		color    [3]uint8
		frames   int
		first    [3]float64
		ones     int
		perFrame int // per-frame items (liver: 3 for 1 frame)
	}{
		{pd + "liver_1frame.dcm", 1, "Liver", [3]uint8{221, 130, 101}, 1, [3]float64{-235.2, -226.8, -128.69}, 36233, 3},
		{pd + "liver_expb_1frame.dcm", 1, "Liver", [3]uint8{221, 130, 101}, 1, [3]float64{-235.2, -226.8, -128.69}, 36233, 3},
		{"ami.js/package/data/dicom/dcm.seg.andrei", 1, "Segmentation", [3]uint8{255, 0, 0}, 275, [3]float64{-201, -59, -679.800049}, 3338, 275},
	}
	var liverBits [][]uint8
	for _, c := range cases {
		t.Run(filepath.Base(c.rel), func(t *testing.T) {
			p := testfiles.Path(t, c.rel)
			s, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Segments) != c.segs || s.Segments[0].Name != c.name || len(s.Frames) != c.frames || s.Frames[0].Position != c.first {
				t.Fatalf("%d segments %q, %d frames, first at %v", len(s.Segments), s.Segments[0].Name, len(s.Frames), s.Frames[0].Position)
			}
			for i, v := range s.Segments[0].Color {
				if d := int(v) - int(c.color[i]); d > 1 || d < -1 {
					t.Fatalf("colour %v, want %v", s.Segments[0].Color, c.color)
				}
			}
			ones := 0
			buf := make([]uint8, s.Rows*s.Columns)
			var bits [][]uint8
			for i := range s.Frames {
				s.Frame(i, buf)
				for _, b := range buf {
					ones += int(b)
				}
				bits = append(bits, append([]uint8(nil), buf...))
			}
			if ones != c.ones {
				t.Fatalf("%d voxels inside, pydicom counts %d", ones, c.ones)
			}
			if strings.HasPrefix(filepath.Base(c.rel), "liver") {
				if liverBits == nil {
					liverBits = bits
				} else if !bytes.Equal(liverBits[0], bits[0]) {
					t.Fatal("big endian copy decodes to other pixels")
				}
			}
			// Place on a source rebuilt from the frames' own positions.
			r := sourceFromFrames(s)
			res, err := s.Place(r)
			if err != nil {
				t.Fatal(err)
			}
			if n := res.LabelMap.Count(1); n != c.ones {
				t.Fatalf("placed %d voxels, want %d", n, c.ones)
			}
			r.FrameOfReferenceUID = "2.25.1"
			var me *MismatchError
			if _, err := s.Place(r); !errors.As(err, &me) {
				t.Fatalf("another frame of reference accepted: %v", err)
			}
		})
	}
}

// sourceFromFrames makes references for the distinct frame positions of s.
func sourceFromFrames(s *SEG) *dicom.SourceRefs {
	f0 := s.Frames[0]
	o := f0.Orientation
	n := [3]float64{o[1]*o[5] - o[2]*o[4], o[2]*o[3] - o[0]*o[5], o[0]*o[4] - o[1]*o[3]}
	seen := map[[3]float64]bool{}
	var pos [][3]float64
	for _, f := range s.Frames {
		if !seen[f.Position] {
			seen[f.Position] = true
			pos = append(pos, f.Position)
		}
	}
	sort.Slice(pos, func(i, j int) bool { return dot(n, pos[i]) < dot(n, pos[j]) })
	r := &dicom.SourceRefs{Name: "rebuilt", Rows: s.Rows, Columns: s.Columns, FrameOfReferenceUID: s.FrameOfReferenceUID,
		Size: [3]int{s.Columns, s.Rows, len(pos)}}
	for k, p := range pos {
		r.Slices = append(r.Slices, dicom.SliceRef{SOPInstanceUID: fmt.Sprint(k), Position: p, HasPosition: true,
			Orientation: o, HasOrientation: true, PixelSpacing: f0.PixelSpacing})
	}
	r.Affine = volume.Identity()
	return r
}

// Our writer on the real derived series (axial, coronal, oblique, enhanced
// multi-frame): dciodvfy reports no error, pydicom reads back the same voxels
// placed by position (and highdicom by reference, when its venv is built), and
// our reader round-trips it.
func TestDerivedSeries(t *testing.T) {
	root := testfiles.Root(t)
	dciodvfy, _ := exec.LookPath("dciodvfy")
	py := "/usr/bin/python3"
	hasPydicom := exec.Command(py, "-c", "import pydicom, numpy").Run() == nil
	hd := filepath.Join(root, ".cache", "highdicom-venv", "bin", "python")
	if _, err := os.Stat(hd); err != nil {
		if os.Getenv("MEDSA_REQUIRE_HIGHDICOM") != "" {
			t.Fatalf("highdicom venv missing: %s (make highdicom-venv)", hd)
		}
		hd = ""
	}
	for _, name := range []string{"axial", "coronal", "oblique", "multi/enhanced_ct.dcm"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			src := testfiles.Path(t, "derived/dicom/"+name)
			v, err := dicom.ReadFiles([]string{src}, "")
			if err != nil {
				t.Fatal(err)
			}
			refs, err := dicom.ReadRefs([]string{src}, "")
			if err != nil {
				t.Fatal(err)
			}
			lm := volume.NewLabelMap(v)
			nx, ny, nz := v.Size[0], v.Size[1], v.Size[2]
			for k := 0; k < nz; k++ {
				for j := 0; j < ny; j++ {
					for i := 0; i < nx; i++ {
						idx := lm.Index(i, j, k)
						switch {
						case k%3 != 0 && v.Data[idx] > 300: // bone, on two slices in three
							lm.Data[idx] = 1
						case i > nx/3 && i < nx/2 && j > ny/3 && j < ny/2 && k > nz/4 && k < nz/2: // a box
							lm.Data[idx] = 2
						}
					}
				}
			}
			out := filepath.Join(t.TempDir(), "seg.dcm")
			segs := []Segment{{Label: 1, Name: "bone", Color: [3]uint8{241, 214, 145}, Type: Code{"272673000", "SCT", "Bone"}},
				{Label: 2, Name: "box", Color: [3]uint8{0, 151, 206}, Algorithm: Manual}}
			if err := Write(out, lm, refs, Options{Segments: segs, Model: "medsa-test@1"}); err != nil {
				t.Fatal(err)
			}
			// Our reader, over references read afresh.
			refs2, err := dicom.ReadRefs([]string{src}, "")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Read(out, refs2)
			if err != nil {
				t.Fatal(err)
			}
			for i := range lm.Data {
				if res.LabelMap.Data[i] != lm.Data[i] {
					t.Fatalf("voxel %d: read %d, wrote %d", i, res.LabelMap.Data[i], lm.Data[i])
				}
			}
			if d := volume.SameGrid(v.Size, v.Affine, res.LabelMap.Size, res.LabelMap.Affine, 1e-6); d != "" {
				t.Fatal(d)
			}
			if res.Labels[0].Name != "bone" || res.Segments[0].Type.Value != "272673000" || res.Segments[1].Algorithm != Manual || res.Segments[0].AlgorithmName != "medsa-test@1" {
				t.Fatalf("segments %+v", res.Segments)
			}
			t.Run("dciodvfy", func(t *testing.T) {
				requireTool(t, "dciodvfy (Debian dicom3tools)", dciodvfy != "")
				b, _ := exec.Command(dciodvfy, out).CombinedOutput()
				for _, line := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(line, "Error") {
						t.Errorf("dciodvfy: %s", line)
					}
				}
			})
			raw := filepath.Join(t.TempDir(), "labels.raw")
			buf := make([]byte, 2*len(lm.Data))
			for i, l := range lm.Data {
				binary.LittleEndian.PutUint16(buf[2*i:], l)
			}
			if err := os.WriteFile(raw, buf, 0o644); err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(root, "scripts", "referee", "check_seg.py")
			argv := []string{script, out, src, raw, fmt.Sprint(nx), fmt.Sprint(ny), fmt.Sprint(nz)}
			t.Run("pydicom", func(t *testing.T) {
				if testing.Short() {
					t.Skip("-short: no Python referees")
				}
				requireTool(t, "/usr/bin/python3 with pydicom and numpy", hasPydicom)
				if b, err := exec.Command(py, argv...).CombinedOutput(); err != nil {
					t.Fatalf("%v\n%s", err, b)
				}
			})
			t.Run("highdicom", func(t *testing.T) {
				if hd == "" || testing.Short() {
					t.Skip("highdicom venv not built (make highdicom-venv), or -short")
				}
				if b, err := exec.Command(hd, append(argv, "--highdicom")...).CombinedOutput(); err != nil {
					t.Fatalf("%v\n%s", err, b)
				}
			})
		})
	}
}

// A SEG opened over another series is refused, naming what differs.
func TestDerivedSeriesMismatch(t *testing.T) {
	axial := testfiles.Path(t, "derived/dicom/axial")
	oblique := testfiles.Path(t, "derived/dicom/oblique")
	refs, err := dicom.ReadRefs([]string{axial}, "")
	if err != nil {
		t.Fatal(err)
	}
	lm := &volume.LabelMap{Size: refs.Size, Affine: refs.Affine, Data: make([]uint16, refs.Size[0]*refs.Size[1]*refs.Size[2])}
	for i := 0; i < len(lm.Data); i += 97 {
		lm.Data[i] = 1
	}
	out := filepath.Join(t.TempDir(), "seg.dcm")
	if err := Write(out, lm, refs, Options{}); err != nil {
		t.Fatal(err)
	}
	ob, err := dicom.ReadRefs([]string{oblique}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Read(out, ob)
	var me *MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "orientation") {
		t.Fatalf("got %v, want an orientation mismatch", err)
	}
	if math.Abs(ob.Slices[0].Orientation[0]-refs.Slices[0].Orientation[0]) < 1e-3 {
		t.Fatal("test series not oblique")
	}
}
