package dicom

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

const heudiconv = "heudiconv/usr/lib/python3/dist-packages/heudiconv/tests/data/"
const dicomnifti = "dicomnifti/usr/share/doc/dicomnifti/examples/"

// stage copies the files of rel (a file or a folder) into a new folder, applying edit to
// each file's bytes when it is not nil, and returns the folder.
func stage(t *testing.T, rel string, edit func([]byte) []byte) string {
	t.Helper()
	src := data(t, rel)
	files := []string{src}
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		es, _ := os.ReadDir(src)
		files = nil
		for _, e := range es {
			files = append(files, filepath.Join(src, e.Name()))
		}
	}
	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			b = edit(b)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// flipCSANormal negates the CSA SliceNormalVector in place (same string lengths), as
// Siemens writes it for mosaics stored against the cross product of the orientation.
func flipCSANormal(t *testing.T) func([]byte) []byte {
	return func(b []byte) []byte {
		b = append([]byte(nil), b...)
		i := bytes.Index(b, []byte("SliceNormalVector\x00"))
		if i < 0 {
			t.Fatal("no SliceNormalVector in the CSA header")
		}
		p := i + 84
		for k := 0; k < 3; k++ {
			l := int(binaryLE.Uint32(b[p+4:]))
			v := b[p+16 : p+16+l]
			s := strings.TrimRight(string(v), "\x00")
			var f float64
			if _, err := fmt.Sscan(s, &f); err != nil {
				t.Fatalf("SliceNormalVector item %q", s)
			}
			n := fmt.Sprintf("%.*f", max(0, len(s)-3), -f) // one character for the sign
			if len(n) > len(s) {
				n = n[:len(s)]
			}
			copy(v, n+strings.Repeat("0", len(s)-len(n)))
			p += 16 + (l+3)&^3
		}
		return b
	}
}

// dcm2niix converts folder dir and reads its (first) NIfTI volume with our reader.
func dcm2niix(t *testing.T, dir string) *volume.Volume {
	t.Helper()
	bin := tool(t, "dcm2niix", "dcm2niix")
	out := t.TempDir()
	if b, err := exec.Command(bin, "-z", "n", "-b", "n", "-f", "out", "-o", out, dir).CombinedOutput(); err != nil {
		t.Fatalf("dcm2niix: %v\n%s", err, b)
	}
	v, err := nifti.Read(filepath.Join(out, "out.nii"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameWorld requires every voxel of a to have a voxel of b at the same world point
// (within tol mm) holding the same value: the grids may differ by flips or
// permutations of their axes (dcm2niix flips rows), not by position or content.
func sameWorld(t *testing.T, name string, a, b *volume.Volume, tol float64) {
	t.Helper()
	if a.Size[0]*a.Size[1]*a.Size[2] != b.Size[0]*b.Size[1]*b.Size[2] {
		t.Fatalf("%s: %v voxels vs %v", name, a.Size, b.Size)
	}
	inv, err := b.Affine.Inverse()
	if err != nil {
		t.Fatal(err)
	}
	worst, bad := 0.0, 0
	for k := 0; k < a.Size[2]; k++ {
		for j := 0; j < a.Size[1]; j++ {
			for i := 0; i < a.Size[0]; i++ {
				w := a.Affine.Apply([3]float64{float64(i), float64(j), float64(k)})
				x := inv.Apply(w)
				var idx [3]int
				for c := range idx {
					idx[c] = int(math.Round(x[c]))
					if idx[c] < 0 || idx[c] >= b.Size[c] {
						t.Fatalf("%s: voxel %d,%d,%d (world %.3f) falls outside the reference grid at %.3f", name, i, j, k, w, x)
					}
				}
				wb := b.Affine.Apply([3]float64{float64(idx[0]), float64(idx[1]), float64(idx[2])})
				d := math.Sqrt((w[0]-wb[0])*(w[0]-wb[0]) + (w[1]-wb[1])*(w[1]-wb[1]) + (w[2]-wb[2])*(w[2]-wb[2]))
				worst = math.Max(worst, d)
				va := a.Data[i+a.Size[0]*(j+a.Size[1]*k)]
				vb := b.Data[idx[0]+b.Size[0]*(idx[1]+b.Size[1]*idx[2])]
				if va != vb {
					if bad == 0 {
						t.Errorf("%s: voxel %d,%d,%d: %v, reference %v at %v", name, i, j, k, va, vb, idx)
					}
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d voxels differ", name, bad)
	}
	if worst > tol {
		t.Errorf("%s: world positions differ by up to %.3g mm (tolerance %g)", name, worst, tol)
	}
	t.Logf("%s: %v, %d voxels identical, world positions within %.2g mm", name, a.Size, a.NumVoxels()-bad, worst)
}

// Siemens mosaics (real EPI, ASL and multiband DWI files) unpack to the grid, voxels and
// geometry dcm2niix gives; a series of mosaics is several volumes, the first shown.
func TestMosaicMatchesDcm2niix(t *testing.T) {
	cases := []struct {
		name, rel string
		flip      bool
		size      [3]int
		note      string
	}{
		{"EPI 35 slices, oblique", heudiconv + "axasc35.dcm", false, [3]int{64, 64, 35}, "Siemens mosaic: 35 slices"},
		{"ASL 20 slices", dicomnifti + "0001.dcm", false, [3]int{72, 72, 20}, "Siemens mosaic: 20 slices"},
		{"multiband DWI, 3 mosaics", heudiconv + "b0dwiForFmap", false, [3]int{150, 152, 81}, "3 frames at each of 81 positions"},
		{"ASL, CSA normal reversed", dicomnifti + "0001.dcm", true, [3]int{72, 72, 20}, "Siemens mosaic"},
		{"EPI, CSA normal reversed", heudiconv + "axasc35.dcm", true, [3]int{64, 64, 35}, "Siemens mosaic"},
	}
	for _, c := range cases {
		var edit func([]byte) []byte
		if c.flip {
			edit = flipCSANormal(t)
		}
		dir := stage(t, c.rel, edit)
		got := mustRead(t, dir)
		if got.Size != c.size || !hasNote(got, c.note) {
			t.Errorf("%s: %v, notes %v; want %v and a note %q", c.name, got.Size, got.Notes, c.size, c.note)
		}
		sameWorld(t, c.name, got, dcm2niix(t, dir), 1e-3)
	}
}

// The CSA header parser reads what it needs and survives any truncation.
func TestCSAHeader(t *testing.T) {
	b, err := os.ReadFile(data(t, heudiconv+"axasc35.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader("axasc35.dcm", b, int64(len(b)), true)
	if err != nil {
		t.Fatal(err)
	}
	csa := csaImageHeader(h.ds)
	v := csaValues(csa, "NumberOfImagesInMosaic", "SliceNormalVector")
	if fmt.Sprint(v["NumberOfImagesInMosaic"]) != "[35]" || len(v["SliceNormalVector"]) != 3 {
		t.Fatalf("CSA values %v", v)
	}
	for n := 0; n < len(csa); n += 7 {
		csaValues(csa[:n], "NumberOfImagesInMosaic", "SliceNormalVector")
	}
	// Without the CSA header, (0019,100A) still gives the count.
	i := bytes.Index(b, []byte("SV10"))
	c := append([]byte(nil), b...)
	copy(c[i:], "XXXX")
	v2, err := ReadBytes("no-csa.dcm", c)
	if err != nil || v2.Size != [3]int{64, 64, 35} {
		t.Errorf("without CSA: %v %v", v2.Size, err)
	}
}

func BenchmarkReadMosaic(b *testing.B) {
	p := data(b, heudiconv+"b0dwiForFmap")
	for b.Loop() {
		if _, err := ReadSeries(p, ""); err != nil {
			b.Fatal(err)
		}
	}
}
