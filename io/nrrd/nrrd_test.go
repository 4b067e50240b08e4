package nrrd

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

// unu finds teem's command-line tool (Debian installs it as teem-unu); tests
// that need the referee skip when it is absent (scripts/setup.sh installs it).
func unu(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"unu", "teem-unu"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("teem's unu is not installed (Debian teem-apps; scripts/setup.sh installs it)")
	return ""
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

const itkData = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data"

// realT1 is a real MR volume (128x128x62 uint8, coronal LSA, ITK's examples) read
// through the NIfTI path: the reference for voxels and world geometry.
func realT1(t testing.TB) *volume.Volume {
	t.Helper()
	v, err := nifti.Read(testfiles.Path(t, itkData+"/KmeansTest_T1UCharRaw.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// spaceArgs writes the affine as unu make's -dirs/-orig in a named space.
func spaceArgs(a volume.Affine, flip [3]float64) (dirs, orig string) {
	var d []string
	for c := 0; c < 3; c++ {
		d = append(d, fmt.Sprintf("(%.17g,%.17g,%.17g)", flip[0]*a[0][c], flip[1]*a[1][c], flip[2]*a[2][c]))
	}
	return strings.Join(d, " "), fmt.Sprintf("(%.17g,%.17g,%.17g)", flip[0]*a[0][3], flip[1]*a[1][3], flip[2]*a[2][3])
}

func sameVolume(t *testing.T, got, want *volume.Volume, tol float64) {
	t.Helper()
	if got.Size != want.Size || got.Channels != want.Channels {
		t.Fatalf("size %v x %d, want %v x %d", got.Size, got.Channels, want.Size, want.Channels)
	}
	for r := 0; r < 4; r++ {
		for c := 0; c < 4; c++ {
			if math.Abs(got.Affine[r][c]-want.Affine[r][c]) > tol {
				t.Fatalf("affine[%d][%d] = %.9g, want %.9g\n got %v\nwant %v", r, c, got.Affine[r][c], want.Affine[r][c], got.Affine, want.Affine)
			}
		}
	}
	if len(got.Data) != len(want.Data) {
		t.Fatalf("%d values, want %d", len(got.Data), len(want.Data))
	}
	for i := range got.Data {
		if got.Data[i] != want.Data[i] {
			t.Fatalf("value %d = %v, want %v", i, got.Data[i], want.Data[i])
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func rawBytes(v *volume.Volume) []byte {
	b := make([]byte, len(v.Data))
	for i, x := range v.Data {
		b[i] = byte(x)
	}
	return b
}

// TestUnuCases: teem (the NRRD reference implementation) writes the real T1 in
// every encoding, many types, both byte orders, each named space, detached
// headers, skips and multi-file data; medsa must read voxels and world geometry
// identical to the NIfTI path for the same volume.
func TestUnuCases(t *testing.T) {
	u := unu(t)
	ref := realT1(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t1.raw"), rawBytes(ref), 0o644); err != nil {
		t.Fatal(err)
	}
	sz := []string{fmt.Sprint(ref.Size[0]), fmt.Sprint(ref.Size[1]), fmt.Sprint(ref.Size[2])}
	mk := func(out, spc string, flip [3]float64, extra ...string) {
		d, o := spaceArgs(ref.Affine, flip)
		args := append([]string{"make", "-i", "t1.raw", "-t", "uchar", "-s"}, sz...)
		args = append(args, "-e", "raw", "-spc", spc, "-dirs", d, "-orig", o, "-o", out)
		run(t, dir, u, append(args, extra...)...)
	}
	lps, ras, las := [3]float64{-1, -1, 1}, [3]float64{1, 1, 1}, [3]float64{-1, 1, 1}
	mk("base.nrrd", "LPS", lps, "-k", "domain", "domain", "domain")
	sh := func(script string) {
		t.Helper()
		run(t, dir, "bash", "-c", strings.ReplaceAll(script, "unu ", u+" "))
	}
	// Per-slice files for the pattern and LIST cases (each with a 2-line, 7-byte preamble).
	var list []string
	raw := rawBytes(ref)
	slice := ref.Size[0] * ref.Size[1]
	for k := 0; k < ref.Size[2]; k++ {
		name := fmt.Sprintf("s%03d.raw", k)
		b := append([]byte("junk\nmore\nabcdefg"), raw[k*slice:(k+1)*slice]...)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		list = append(list, name)
	}
	d, o := spaceArgs(ref.Affine, lps)
	cases := []struct {
		name, file string
		prep       func()
	}{
		{"raw", "base.nrrd", nil},
		{"gzip", "gz.nrrd", func() { sh("unu save -f nrrd -e gzip -i base.nrrd -o gz.nrrd") }},
		{"gzip level 9", "gz9.nrrd", func() { sh("unu save -f nrrd -e gzip:9 -i base.nrrd -o gz9.nrrd") }},
		{"bzip2", "bz.nrrd", func() { sh("unu save -f nrrd -e bzip2 -i base.nrrd -o bz.nrrd") }},
		{"ascii", "txt.nrrd", func() { sh("unu save -f nrrd -e ascii -i base.nrrd -o txt.nrrd") }},
		{"hex", "hex.nrrd", func() { sh("unu save -f nrrd -e hex -i base.nrrd -o hex.nrrd") }},
		{"short big endian", "s16be.nrrd", func() { sh("unu convert -t short -i base.nrrd | unu save -f nrrd -e raw -en big -o s16be.nrrd") }},
		{"ushort gzip big", "u16.nrrd", func() { sh("unu convert -t ushort -i base.nrrd | unu save -f nrrd -e gzip -en big -o u16.nrrd") }},
		{"int", "i32.nrrd", func() { sh("unu convert -t int -i base.nrrd -o i32.nrrd") }},
		{"uint big", "u32.nrrd", func() { sh("unu convert -t uint -i base.nrrd | unu save -f nrrd -e raw -en big -o u32.nrrd") }},
		{"long long", "i64.nrrd", func() { sh("unu convert -t longlong -i base.nrrd -o i64.nrrd") }},
		{"unsigned long long bzip2", "u64.nrrd", func() { sh("unu convert -t ulonglong -i base.nrrd | unu save -f nrrd -e bzip2 -o u64.nrrd") }},
		{"float", "f32.nrrd", func() { sh("unu convert -t float -i base.nrrd -o f32.nrrd") }},
		{"double big gzip", "f64.nrrd", func() { sh("unu convert -t double -i base.nrrd | unu save -f nrrd -e gzip -en big -o f64.nrrd") }},
		{"detached gzip", "det.nhdr", func() { sh("unu save -f nrrd -e gzip -i base.nrrd -o det.nhdr") }},
		{"detached raw", "detraw.nhdr", func() { sh("unu save -f nrrd -e raw -i base.nrrd -o detraw.nhdr") }},
		{"RAS", "ras.nrrd", func() { mk("ras.nrrd", "RAS", ras) }},
		{"LAS", "las.nrrd", func() { mk("las.nrrd", "LAS", las) }},
		{"scanner-xyz", "scanner.nrrd", func() { mk("scanner.nrrd", "scanner-xyz", lps) }},
		{"with measurement frame", "mf.nrrd", func() { mk("mf.nrrd", "LPS", lps, "-mf", "(0,1,0) (1,0,0) (0,0,1)") }},
		{"pattern files with skips", "pat.nhdr", func() {
			run(t, dir, u, append(append([]string{"make", "-h", "-i", "s%03d.raw", "0", fmt.Sprint(ref.Size[2] - 1), "1", "-t", "uchar", "-s"}, sz...),
				"-e", "raw", "-ls", "2", "-bs", "7", "-spc", "LPS", "-dirs", d, "-orig", o, "-o", "pat.nhdr")...)
		}},
		{"LIST files with skips", "list.nhdr", func() {
			run(t, dir, u, append(append(append([]string{"make", "-h", "-i"}, list...), append([]string{"-t", "uchar", "-s"}, sz...)...),
				"-e", "raw", "-ls", "2", "-bs", "7", "-spc", "LPS", "-dirs", d, "-orig", o, "-o", "list.nhdr")...)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.prep != nil {
				c.prep()
			}
			v, err := Read(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			sameVolume(t, v, ref, 1e-9)
			if v.Modality != "OT" || v.Window[1] <= 0 {
				t.Errorf("modality %q window %v", v.Modality, v.Window)
			}
		})
	}
	if h := run(t, dir, u, "head", "list.nhdr"); !strings.Contains(h, "data file: LIST") {
		t.Errorf("unu wrote no LIST header:\n%s", h)
	}
}

// TestChannelsAndVolumes: a leading RGB-color axis becomes RGB channels, a
// 4-vector axis its first component, and a trailing list axis the first volume.
func TestChannelsAndVolumes(t *testing.T) {
	u := unu(t)
	ref := realT1(t)
	dir := t.TempDir()
	raw := rawBytes(ref)
	n := len(raw)
	rgb := make([]byte, 3*n)
	vec4 := make([]byte, 4*n)
	for i, b := range raw {
		rgb[3*i], rgb[3*i+1], rgb[3*i+2] = b, 255-b, b/2
		vec4[4*i], vec4[4*i+1], vec4[4*i+2], vec4[4*i+3] = b, 1, 2, 3
	}
	two := append(append([]byte(nil), raw...), make([]byte, n)...)
	for name, b := range map[string][]byte{"rgb.raw": rgb, "vec4.raw": vec4, "two.raw": two, "t1.raw": raw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, o := spaceArgs(ref.Affine, [3]float64{-1, -1, 1})
	sz := []string{fmt.Sprint(ref.Size[0]), fmt.Sprint(ref.Size[1]), fmt.Sprint(ref.Size[2])}
	mk := func(out, in string, lead, trail []string, kinds []string, dirs string) {
		args := append([]string{"make", "-i", in, "-t", "uchar", "-s"}, append(append(append([]string{}, lead...), sz...), trail...)...)
		args = append(args, "-e", "gzip", "-spc", "LPS", "-dirs", dirs, "-orig", o, "-k")
		run(t, dir, u, append(append(args, kinds...), "-o", out)...)
	}
	mk("rgb.nrrd", "rgb.raw", []string{"3"}, nil, []string{"RGB-color", "domain", "domain", "domain"}, "none "+d)
	mk("vec4.nrrd", "vec4.raw", []string{"4"}, nil, []string{"4-vector", "domain", "domain", "domain"}, "none "+d)
	mk("list.nrrd", "two.raw", nil, []string{"2"}, []string{"domain", "domain", "domain", "list"}, d+" none")

	v, err := Read(filepath.Join(dir, "rgb.nrrd"))
	if err != nil {
		t.Fatal(err)
	}
	want := *ref
	want.Channels = 3
	want.Data = make([]float32, len(rgb))
	for i, b := range rgb {
		want.Data[i] = float32(b)
	}
	sameVolume(t, v, &want, 1e-9)
	if v.DataType != "rgb24" || v.Window != [2]float64{127.5, 255} {
		t.Errorf("RGB: datatype %q window %v", v.DataType, v.Window)
	}
	for _, f := range []string{"vec4.nrrd", "list.nrrd"} {
		v, err := Read(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sameVolume(t, v, ref, 1e-9)
		if len(v.Notes) == 0 {
			t.Errorf("%s: no note about the dropped components/volumes", f)
		}
		t.Logf("%s: %v", f, v.Notes)
	}
}

// TestITKExamples: ITK's own detached headers (2D, oblique +30°, no named space)
// read as ITK reads them: directions in LPS; the voxels are the .raw bytes.
func TestITKExamples(t *testing.T) {
	dir := testfiles.Path(t, itkData)
	v, err := Read(filepath.Join(dir, "BrainProtonDensitySliceBorder20DirectionPlus30.nhdr"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "BrainProtonDensitySliceBorder20DirectionPlus30.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Size != [3]int{221, 257, 1} || len(v.Data) != len(raw) {
		t.Fatalf("size %v, %d values", v.Size, len(v.Data))
	}
	for i, b := range raw {
		if v.Data[i] != float32(b) {
			t.Fatalf("voxel %d = %v, want %d", i, v.Data[i], b)
		}
	}
	c, s := 0.866025, 0.5
	want := volume.Affine{{-c, s, 0, 0}, {-s, -c, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	if v.Affine != want {
		t.Errorf("affine %v, want %v", v.Affine, want)
	}
}

// TestWriteReadBack: what medsa writes, teem reads: unu head shows the grid in
// LPS, unu save -e raw decodes the same labels, and Slicer's segment keys are there.
func TestWriteReadBack(t *testing.T) {
	u := unu(t)
	ref := realT1(t)
	dir := t.TempDir()
	m := volume.NewLabelMap(ref)
	for i, x := range ref.Data {
		switch {
		case x > 150:
			m.Data[i] = 2
		case x > 90:
			m.Data[i] = 1
		}
	}
	wide := volume.NewLabelMap(ref)
	for i, x := range ref.Data {
		wide.Data[i] = uint16(x) * 100
	}
	labels := []volume.Label{{Value: 1, Name: "grey matter", Color: [3]uint8{255, 0, 0}}, {Value: 2, Name: "white matter", Color: [3]uint8{0, 128, 255}}, {Value: 7, Name: "unused", Color: [3]uint8{1, 2, 3}}}
	cases := []struct {
		name string
		m    *volume.LabelMap
		seg  bool
		typ  string
	}{
		{"labels.nrrd", m, false, "unsigned char"},
		{"wide.nrrd", wide, false, "unsigned short"},
		{"labels.seg.nrrd", m, true, "unsigned char"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			var err error
			if c.seg {
				err = WriteSegmentation(p, c.m, labels)
			} else {
				err = WriteLabelMap(p, c.m)
			}
			if err != nil {
				t.Fatal(err)
			}
			head := run(t, dir, u, "head", c.name)
			dirs, orig := lpsGeometry(ref.Affine)
			for _, want := range []string{"type: " + c.typ, "space: left-posterior-superior", "encoding: gzip",
				"sizes: 128 128 62", "space directions: " + strings.Join(dirs, " "), "space origin: " + orig} {
				if !strings.Contains(head, want+"\n") {
					t.Errorf("unu head lacks %q:\n%s", want, head)
				}
			}
			run(t, dir, u, "save", "-f", "nrrd", "-e", "raw", "-en", "little", "-i", c.name, "-o", c.name+".back.nhdr")
			back, err := os.ReadFile(filepath.Join(dir, c.name+".back.raw"))
			if err != nil {
				t.Fatal(err)
			}
			unit := 1
			if c.typ == "unsigned short" {
				unit = 2
			}
			if len(back) != unit*len(c.m.Data) {
				t.Fatalf("unu decoded %d bytes, want %d", len(back), unit*len(c.m.Data))
			}
			for i, l := range c.m.Data {
				got := uint16(back[unit*i])
				if unit == 2 {
					got |= uint16(back[2*i+1]) << 8
				}
				if got != l {
					t.Fatalf("voxel %d: unu reads %d, wrote %d", i, got, l)
				}
			}
			// and medsa reads its own file back onto the source grid
			lm, ls, _, err := ReadLabelMap(p)
			if err != nil {
				t.Fatal(err)
			}
			if d := volume.SameGrid(ref.Size, ref.Affine, lm.Size, lm.Affine, 1e-9); d != "" {
				t.Fatal(d)
			}
			for i := range lm.Data {
				if lm.Data[i] != c.m.Data[i] {
					t.Fatalf("voxel %d: %d, wrote %d", i, lm.Data[i], c.m.Data[i])
				}
			}
			if !c.seg {
				return
			}
			for _, want := range []string{"Segment0_Name:=grey matter", "Segment1_Name:=white matter", "Segment2_Name:=unused",
				"Segment0_LabelValue:=1", "Segment1_LabelValue:=2", "Segment1_Color:=0 0.501961 1", "Segment0_Layer:=0",
				"Segment0_ID:=Segment_1", "Segment2_Extent:=0 -1 0 -1 0 -1", "Segmentation_MasterRepresentation:=Binary labelmap",
				"Segmentation_ContainedRepresentationNames:=Binary labelmap|", "Segmentation_ReferenceImageExtentOffset:=0 0 0"} {
				if !strings.Contains(head, want+"\n") {
					t.Errorf("unu head lacks %q", want)
				}
			}
			// the extent of label 1 is its voxels' bounding box
			lo, hi := [3]int{1 << 30, 1 << 30, 1 << 30}, [3]int{-1, -1, -1}
			for i, l := range m.Data {
				if l == 1 {
					ijk := [3]int{i % 128, i / 128 % 128, i / (128 * 128)}
					for a := range ijk {
						lo[a], hi[a] = min(lo[a], ijk[a]), max(hi[a], ijk[a])
					}
				}
			}
			if want := fmt.Sprintf("Segment0_Extent:=%d %d %d %d %d %d\n", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]); !strings.Contains(head, want) {
				t.Errorf("unu head lacks %q", want)
			}
			if len(ls) != 3 || ls[0] != labels[0] || ls[1].Name != "white matter" || ls[1].Color != [3]uint8{0, 128, 255} || ls[2].Value != 7 {
				t.Errorf("labels read back: %+v", ls)
			}
		})
	}
}

// TestWriteVolume: an image converted to NRRD reads back identical, and teem reads it.
func TestWriteVolume(t *testing.T) {
	u := unu(t)
	ref := realT1(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "t1.nrrd")
	if err := WriteVolume(p, ref); err != nil {
		t.Fatal(err)
	}
	v, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	sameVolume(t, v, ref, 1e-12)
	if v.DataType != ref.DataType {
		t.Errorf("datatype %s, want %s", v.DataType, ref.DataType)
	}
	if h := run(t, dir, u, "head", "t1.nrrd"); !strings.Contains(h, "type: short\n") {
		t.Errorf("unu head:\n%s", h)
	}
	rgb := *ref
	rgb.Channels, rgb.DataType = 3, "rgb24"
	rgb.Data = make([]float32, 3*len(ref.Data))
	for i, x := range ref.Data {
		rgb.Data[3*i], rgb.Data[3*i+1], rgb.Data[3*i+2] = x, 255-x, 7
	}
	if err := WriteVolume(p, &rgb); err != nil {
		t.Fatal(err)
	}
	if v, err = Read(p); err != nil {
		t.Fatal(err)
	}
	sameVolume(t, v, &rgb, 1e-12)
	if h := run(t, dir, u, "head", "t1.nrrd"); !strings.Contains(h, "kinds: RGB-color domain domain domain\n") {
		t.Errorf("unu head:\n%s", h)
	}
}

// TestSegLayers: a Slicer segmentation with overlapping segments (a leading
// list axis of layers, the same label value in two layers) merges into one map
// with renumbered labels and a note.
func TestSegLayers(t *testing.T) {
	data := []byte{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0} // 2 layers x 2x2x2
	// layer is the fastest axis: voxel v has layer0 data[2v], layer1 data[2v+1]
	hdr := "NRRD0004\ntype: unsigned char\ndimension: 4\nspace: left-posterior-superior\nsizes: 2 2 2 2\n" +
		"space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nencoding: raw\nspace origin: (0,0,0)\n" +
		"Segment0_Name:=liver\nSegment0_LabelValue:=1\nSegment0_Layer:=0\nSegment0_Color:=1 0 0\n" +
		"Segment1_Name:=tumour\nSegment1_LabelValue:=1\nSegment1_Layer:=1\nSegment1_Color:=0 1 0\n\n"
	p := filepath.Join(t.TempDir(), "x.seg.nrrd")
	if err := os.WriteFile(p, append([]byte(hdr), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	m, labels, notes, err := ReadLabelMap(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint16{0, 1, 1, 0, 0, 2, 0, 0} // voxel 5 is in both: the later segment wins
	for i := range want {
		if m.Data[i] != want[i] {
			t.Fatalf("labels %v, want %v", m.Data, want)
		}
	}
	if len(labels) != 2 || labels[0].Name != "liver" || labels[1].Value != 2 || labels[1].Color != [3]uint8{0, 255, 0} {
		t.Errorf("labels %+v", labels)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "renumbered") || !strings.Contains(notes[1], "1 voxels belong to more than one") {
		t.Errorf("notes %q", notes)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

const tinyHdr = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nspace: RAS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: %s\n\n"

// TestBadInput: each broken file gets a clear error naming the problem, never a
// panic, and nothing large is allocated for a claim the file cannot back.
func TestBadInput(t *testing.T) {
	restore := volume.SetMemoryLimit(64<<20, "test")
	defer restore()
	ok8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	hdr := func(enc string) string { return fmt.Sprintf(tinyHdr, enc) }
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty file", nil},
		{"no magic", "not a NRRD", []byte("P5\n2 2\n255\n")},
		{"bad type", "not a NRRD scalar type", []byte(strings.Replace(hdr("raw"), "uchar", "quaternion", 1))},
		{"dimension 5", "2D, 3D and 4D", []byte(strings.Replace(hdr("raw"), "dimension: 3", "dimension: 5", 1))},
		{"sizes count", "sizes: 3 values, want 4", []byte(strings.Replace(hdr("raw"), "dimension: 3", "dimension: 4", 1))},
		{"zero size", "axis 1 has 0 samples", []byte(strings.Replace(hdr("raw"), "sizes: 2 2 2", "sizes: 2 0 2", 1))},
		{"huge claim", "memory", []byte(strings.Replace(hdr("gzip"), "sizes: 2 2 2", "sizes: 1024 1024 512", 1))},
		{"raw short", "file holds 3", append([]byte(hdr("raw")), 1, 2, 3)},
		{"gzip short", "shorter than the header", append([]byte(hdr("gzip")), gz(ok8[:5])...)},
		{"gzip long", "longer than the header", append([]byte(hdr("gzip")), gz(append(ok8, 9))...)},
		{"gzip garbage", "gzip", append([]byte(hdr("gzip")), "not gzip at all"...)},
		{"bzip2 garbage", "bzip2", append([]byte(hdr("bzip2")), "BZh9 nonsense"...)},
		{"ascii word", "not a number", []byte(hdr("ascii") + "1 2 3 x 5 6 7 8")},
		{"ascii short", "at most 3", []byte(hdr("ascii") + "1 2 3")},
		{"ascii fraction in uchar", "not an integer", []byte(hdr("ascii") + "1 2 3 4.5 5 6 7 8")},
		{"unknown encoding", "not supported", []byte(hdr("zrl"))},
		{"bad space", "not a NRRD space", []byte(strings.Replace(hdr("raw"), "RAS", "upside-down", 1))},
		{"bad vector", "not a number", []byte(strings.Replace(hdr("raw"), "(1,0,0)", "(1,x,0)", 1))},
		{"singular", "singular", append([]byte(strings.Replace(hdr("raw"), "(0,0,1)", "(0,1,0)", 1)), ok8...)},
		{"detached in memory", "detached header", []byte(strings.Replace(hdr("raw"), "encoding: raw\n\n", "encoding: raw\ndata file: x.raw\n", 1))},
		{"bad line", "neither a field", []byte("NRRD0004\nthis is not a field\n\n")},
		{"1-D image", "2D, 3D and 4D", []byte("NRRD0004\ntype: uchar\ndimension: 1\nsizes: 4\nencoding: raw\n\n\x01\x02\x03\x04")},
		{"vector only", "spatial axes", []byte("NRRD0004\ntype: uchar\ndimension: 2\nsizes: 3 4\nkinds: RGB-color domain\nencoding: raw\n\n............")},
		{"byte skip -1 gzip", "needs raw", []byte(strings.Replace(hdr("gzip"), "encoding", "byte skip: -1\nencoding", 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes("bad.nrrd", c.data)
			if err == nil {
				t.Fatalf("accepted: %v", v.Size)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.nrrd") {
				t.Errorf("error %q, want it to name the file and say %q", err, c.want)
			}
		})
	}
	// A detached header whose data file is missing or short.
	dir := t.TempDir()
	det := filepath.Join(dir, "x.nhdr")
	os.WriteFile(det, []byte(strings.Replace(hdr("raw"), "encoding: raw\n\n", "encoding: raw\ndata file: x.raw\n", 1)), 0o644)
	if _, err := Read(det); err == nil || !strings.Contains(err.Error(), "x.raw") {
		t.Errorf("missing data file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "x.raw"), ok8[:7], 0o644)
	if _, err := Read(det); err == nil || !strings.Contains(err.Error(), "hold 7") {
		t.Errorf("short data file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "x.raw"), ok8, 0o644)
	if _, err := Read(det); err != nil {
		t.Errorf("good data file: %v", err)
	}
}

// TestGoodSmall checks hand-written cases that teem does not write itself.
func TestGoodSmall(t *testing.T) {
	ok8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	cases := []struct {
		name   string
		data   []byte
		affine volume.Affine
		values []float32
	}{
		{"no space: spacings and axis mins, LPS", []byte("NRRD0001\ntype: signed char\ndimension: 3\nsizes: 2 2 2\nspacings: 2 3 4\naxis mins: 10 20 30\nencoding: raw\n\n\xff\x02\x03\x04\x05\x06\x07\x80"),
			volume.Affine{{-2, 0, 0, -10}, {0, -3, 0, -20}, {0, 0, 4, 30}, {0, 0, 0, 1}}, []float32{-1, 2, 3, 4, 5, 6, 7, -128}},
		{"RAS gzip CRLF", append([]byte(strings.ReplaceAll(fmt.Sprintf(tinyHdr, "gzip"), "\n", "\r\n")), gz(ok8)...),
			volume.Identity(), []float32{1, 2, 3, 4, 5, 6, 7, 8}},
		{"2D slice in 3D space gets a unit normal", []byte("NRRD0004\ntype: uint8\ndimension: 2\nsizes: 2 2\nspace: LPS\nspace directions: (0,2,0) (0,0,3)\nspace origin: (1,2,3)\nencoding: raw\n\n\x01\x02\x03\x04"),
			volume.Affine{{0, 0, -1, -1}, {-2, 0, 0, -2}, {0, 3, 0, 3}, {0, 0, 0, 1}}, []float32{1, 2, 3, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes("ok.nrrd", c.data)
			if err != nil {
				t.Fatal(err)
			}
			if v.Affine != c.affine {
				t.Errorf("affine %v, want %v", v.Affine, c.affine)
			}
			for i, x := range c.values {
				if v.Data[i] != x {
					t.Fatalf("values %v, want %v", v.Data, c.values)
				}
			}
		})
	}
}

// BenchmarkReadGzipNRRD times the reader's hot path: inflate and convert a real
// 1 M-voxel gzip NRRD.
func BenchmarkReadGzipNRRD(b *testing.B) {
	ref := realT1(b)
	p := filepath.Join(b.TempDir(), "t1.nrrd")
	if err := WriteVolume(p, ref); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(ref.Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Read(p); err != nil {
			b.Fatal(err)
		}
	}
}

// Sizes whose product wraps an int64 (review of 2026-12-02): a clear error, not a panic.
func TestWrappingSizes(t *testing.T) {
	dir := t.TempDir()
	lm := filepath.Join(dir, "wrap.seg.nrrd")
	os.WriteFile(lm, []byte("NRRD0004\ntype: uint8\ndimension: 4\nsizes: 2 2 2147483648 2147483648\nkinds: domain domain list list\nencoding: raw\n\n\x01\x02\x03\x04"), 0o644)
	det := filepath.Join(dir, "wrap.nhdr")
	os.WriteFile(det, []byte("NRRD0004\ntype: double\ndimension: 4\nsizes: 2 2 2147483648 2147483648\nkinds: domain domain list list\nencoding: raw\ndata file: x.raw\n\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.raw"), make([]byte, 64), 0o644)
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"label map", func() error { _, _, _, err := ReadLabelMap(lm); return err }},
		{"detached", func() error { _, err := Read(det); return err }},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: panic %v", c.name, r)
				}
			}()
			if err := c.read(); err == nil {
				t.Errorf("%s: accepted", c.name)
			}
		}()
	}
}
