package dicomseg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/volume"
)

// geom is a synthetic source series: no files, just the references Write needs.
type geom struct {
	nx, ny, nz int
	row, col   [3]float64 // LPS direction cosines
	origin     [3]float64 // LPS position of slice 0
	ps         [2]float64 // row spacing, column spacing
	step       float64    // slice spacing along the normal
	multi      bool       // one multi-frame instance instead of one file per slice
}

func (g geom) refs() *dicom.SourceRefs {
	n := [3]float64{g.row[1]*g.col[2] - g.row[2]*g.col[1], g.row[2]*g.col[0] - g.row[0]*g.col[2], g.row[0]*g.col[1] - g.row[1]*g.col[0]}
	r := &dicom.SourceRefs{Name: "synthetic", Rows: g.ny, Columns: g.nx, Size: [3]int{g.nx, g.ny, g.nz},
		SeriesInstanceUID: "2.25.1", FrameOfReferenceUID: "2.25.2", Modality: "CT",
		Study: dicom.Study{PatientName: "Test^Patient", PatientID: "P1", StudyInstanceUID: "2.25.3", StudyDate: "20240101", StudyTime: "120000", StudyID: "1"}}
	for k := 0; k < g.nz; k++ {
		s := dicom.SliceRef{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: fmt.Sprintf("2.25.100%d", k),
			HasPosition: true, HasOrientation: true, PixelSpacing: g.ps, SliceThickness: g.step}
		if g.multi {
			s.SOPClassUID, s.SOPInstanceUID, s.Frame = "1.2.840.10008.5.1.4.1.1.2.1", "2.25.99", k+1
		}
		// Positions as a real file holds them: decimal strings of at most 16 characters.
		for c := 0; c < 3; c++ {
			s.Position[c], _ = strconv.ParseFloat(fmtDS(g.origin[c]+float64(k)*g.step*n[c]), 64)
		}
		copy(s.Orientation[:3], g.row[:])
		copy(s.Orientation[3:], g.col[:])
		r.Slices = append(r.Slices, s)
	}
	for c := 0; c < 3; c++ {
		r.Affine[c] = [4]float64{g.row[c] * g.ps[1], g.col[c] * g.ps[0], n[c] * g.step, g.origin[c]}
	}
	r.Affine[3] = [4]float64{0, 0, 0, 1}
	for c := 0; c < 4; c++ {
		r.Affine[0][c], r.Affine[1][c] = -r.Affine[0][c], -r.Affine[1][c]
	}
	return r
}

var (
	axialGeom    = geom{nx: 16, ny: 12, nz: 6, row: [3]float64{1, 0, 0}, col: [3]float64{0, 1, 0}, origin: [3]float64{-20, -15, 30}, ps: [2]float64{0.8, 0.7}, step: 2.5}
	cos20, sin20 = math.Cos(20 * math.Pi / 180), math.Sin(20 * math.Pi / 180)
	obliqueGeom  = geom{nx: 8, ny: 8, nz: 5, row: [3]float64{cos20, sin20, 0}, col: [3]float64{0, 0, -1}, origin: [3]float64{10.25, -3.125, 40}, ps: [2]float64{1.25, 0.5}, step: 1.5}
	oddGeom      = geom{nx: 5, ny: 3, nz: 4, row: [3]float64{0, 1, 0}, col: [3]float64{0, 0, -1}, origin: [3]float64{1, 2, 3}, ps: [2]float64{1, 1}, step: 3, multi: true}
)

// labelsOf fills a label map on g with a few labels and gaps.
func labelsOf(g geom, values ...uint16) *volume.LabelMap {
	r := g.refs()
	lm := &volume.LabelMap{Size: r.Size, Affine: r.Affine, Data: make([]uint16, g.nx*g.ny*g.nz)}
	rng := rand.New(rand.NewSource(int64(g.nx*1000 + g.nz)))
	for k := 0; k < g.nz; k++ {
		if k == 1 {
			continue // an empty slice: no frame
		}
		for i := range lm.Data[k*g.nx*g.ny : (k+1)*g.nx*g.ny] {
			if rng.Intn(3) == 0 {
				lm.Data[k*g.nx*g.ny+i] = values[rng.Intn(len(values))]
			}
		}
	}
	return lm
}

func encode(t testing.TB, lm *volume.LabelMap, r *dicom.SourceRefs, opt Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, lm, r, opt); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// renumbered maps label values to segment numbers (1..n in value order), as Write does.
func renumbered(lm *volume.LabelMap) []uint16 {
	var vals []int
	seen := map[uint16]bool{}
	for _, l := range lm.Data {
		if l != 0 && !seen[l] {
			seen[l] = true
			vals = append(vals, int(l))
		}
	}
	num := map[uint16]uint16{}
	sortInts(vals)
	for i, v := range vals {
		num[uint16(v)] = uint16(i + 1)
	}
	out := make([]uint16, len(lm.Data))
	for i, l := range lm.Data {
		out[i] = num[l]
	}
	return out
}

func sortInts(x []int) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		g      geom
		labels []uint16
	}{
		{"axial one label", axialGeom, []uint16{1}},
		{"axial labels with gaps", axialGeom, []uint16{1, 3, 7}},
		{"oblique", obliqueGeom, []uint16{2, 5}},
		{"sagittal multi-frame, 15-pixel frames not byte-aligned", oddGeom, []uint16{1, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.g.refs()
			lm := labelsOf(c.g, c.labels...)
			data := encode(t, lm, r, Options{Model: "medsa-sam@1.2"})
			s, err := Parse("x.dcm", data)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Segments) != len(c.labels) {
				t.Fatalf("%d segments, want %d", len(s.Segments), len(c.labels))
			}
			// One frame per non-empty (segment, slice), each at its slice's position.
			want := 0
			for _, l := range c.labels {
				for k := 0; k < c.g.nz; k++ {
					for _, x := range lm.Data[k*c.g.nx*c.g.ny : (k+1)*c.g.nx*c.g.ny] {
						if x == l {
							want++
							break
						}
					}
				}
			}
			if len(s.Frames) != want {
				t.Fatalf("%d frames, want %d", len(s.Frames), want)
			}
			for i, f := range s.Frames {
				found := false
				for _, sl := range r.Slices {
					if sl.Position == f.Position && sl.SOPInstanceUID == f.RefInstance && sl.Frame == f.RefFrame {
						found = true
					}
				}
				if !found {
					t.Fatalf("frame %d at %v (ref %s/%d) is no source slice", i, f.Position, f.RefInstance, f.RefFrame)
				}
			}
			res, err := s.Place(r)
			if err != nil {
				t.Fatal(err)
			}
			exp := renumbered(lm)
			for i := range exp {
				if res.LabelMap.Data[i] != exp[i] {
					t.Fatalf("voxel %d: %d, want %d", i, res.LabelMap.Data[i], exp[i])
				}
			}
			if res.LabelMap.Affine != r.Affine || res.LabelMap.Size != r.Size {
				t.Fatal("placed on another grid")
			}
			for _, sg := range res.Segments {
				if sg.Algorithm != Semiautomatic || sg.AlgorithmName != "medsa-sam@1.2" || sg.Category != DefaultCategory || sg.Type != DefaultType {
					t.Fatalf("segment %+v", sg)
				}
			}
		})
	}
}

// Frames written in any order land on their slices: placement is by position.
func TestPlaceByPositionNotOrder(t *testing.T) {
	for _, g := range []geom{axialGeom, oddGeom} {
		r := g.refs()
		lm := labelsOf(g, 1, 2)
		p, err := prepare(lm, r, Options{})
		if err != nil {
			t.Fatal(err)
		}
		rand.New(rand.NewSource(3)).Shuffle(len(p.frames), func(i, j int) { p.frames[i], p.frames[j] = p.frames[j], p.frames[i] })
		p.build()
		var b bytes.Buffer
		if err := p.encode(&b); err != nil {
			t.Fatal(err)
		}
		s, err := Parse("shuffled.dcm", b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Place(r)
		if err != nil {
			t.Fatal(err)
		}
		exp := renumbered(lm)
		for i := range exp {
			if res.LabelMap.Data[i] != exp[i] {
				t.Fatalf("voxel %d: %d, want %d", i, res.LabelMap.Data[i], exp[i])
			}
		}
	}
}

func TestPlaceRefusesMismatch(t *testing.T) {
	lm := labelsOf(axialGeom, 1)
	data := encode(t, lm, axialGeom.refs(), Options{})
	s, err := Parse("seg.dcm", data)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(g *geom, r *dicom.SourceRefs)
		want   string
	}{
		{"frame of reference", func(g *geom, r *dicom.SourceRefs) { r.FrameOfReferenceUID = "2.25.77" }, "frame of reference 2.25.2, image 2.25.77"},
		{"size", func(g *geom, r *dicom.SourceRefs) { r.Columns = 17 }, "frames are 16x12"},
		{"shifted in plane", func(g *geom, r *dicom.SourceRefs) {
			for k := range r.Slices {
				r.Slices[k].Position[0] += 1
			}
		}, "lies 1 mm from the nearest slice"},
		{"between slices", func(g *geom, r *dicom.SourceRefs) {
			for k := range r.Slices {
				r.Slices[k].Position[2] += 1.2
			}
		}, "mm along the normal"},
		{"orientation", func(g *geom, r *dicom.SourceRefs) {
			for k := range r.Slices {
				r.Slices[k].Orientation = [6]float64{cos20, sin20, 0, -sin20, cos20, 0}
			}
		}, "orientation"},
		{"pixel spacing", func(g *geom, r *dicom.SourceRefs) {
			for k := range r.Slices {
				r.Slices[k].PixelSpacing = [2]float64{0.9, 0.7}
			}
		}, "pixel spacing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := axialGeom
			r := g.refs()
			c.change(&g, r)
			_, err := s.Place(r)
			var me *MismatchError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "seg.dcm") {
				t.Fatalf("got %v, want a MismatchError naming seg.dcm and %q", err, c.want)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	r := axialGeom.refs()
	good := labelsOf(axialGeom, 1)
	noOri := axialGeom.refs()
	noOri.Slices[0].HasOrientation = false
	noPos := axialGeom.refs()
	noPos.Slices[3].HasPosition = false
	shifted := *good
	shifted.Affine[0][3] += 0.5
	cases := []struct {
		name string
		lm   *volume.LabelMap
		r    *dicom.SourceRefs
		opt  Options
		want string
	}{
		{"empty mask", &volume.LabelMap{Size: r.Size, Affine: r.Affine, Data: make([]uint16, len(good.Data))}, r, Options{}, "the mask is empty"},
		{"other size", &volume.LabelMap{Size: [3]int{16, 12, 5}, Affine: r.Affine, Data: make([]uint16, 16*12*5)}, r, Options{}, "not on the grid"},
		{"other affine", &shifted, r, Options{}, "geometry differs"},
		{"no orientation", good, noOri, Options{}, "no ImageOrientationPatient"},
		{"no position", good, noPos, Options{}, "slice 3"},
		{"bad algorithm", good, r, Options{Segments: []Segment{{Label: 1, Name: "x", Algorithm: "GUESS"}}}, `algorithm type "GUESS"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(filepath.Join(t.TempDir(), "out.dcm"), c.lm, c.r, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "out.dcm") {
				t.Fatalf("got %v, want an error naming out.dcm and %q", err, c.want)
			}
		})
	}
}

func TestParseBadInput(t *testing.T) {
	good := encode(t, labelsOf(axialGeom, 1, 2), axialGeom.refs(), Options{})
	// replace returns good with the first occurrence of old replaced (same length).
	replace := func(old, new []byte) []byte {
		b := append([]byte(nil), good...)
		i := bytes.Index(b, old)
		if i < 0 {
			t.Fatalf("%q not in the file", old)
		}
		copy(b[i:], new)
		return b
	}
	replaceLast := func(old, new []byte) []byte {
		b := append([]byte(nil), good...)
		copy(b[bytes.LastIndex(b, old):], new)
		return b
	}
	frames := 0
	if s, err := Parse("g", good); err == nil {
		frames = len(s.Frames)
	}
	nf := []byte(fmt.Sprintf("%d", frames))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no DICM marker"},
		{"not DICOM", bytes.Repeat([]byte("x"), 300), "no DICM marker"},
		{"truncated header", good[:601], "truncated"},
		{"truncated pixels", good[:len(good)-100], "PixelData claims"},
		{"other SOP class", replaceLast([]byte(SOPClassSegmentation), []byte("1.2.840.10008.5.1.4.1.1.66.5")), "not a DICOM Segmentation"},
		{"more frames claimed", replace([]byte{0x28, 0, 8, 0, 'I', 'S'}, append([]byte{0x28, 0, 8, 0, 'I', 'S', byte(len(nf) + len(nf)%2), 0}, bytes.Repeat([]byte("9"), len(nf))...)), "frame"},
		{"compressed syntax", replace([]byte(explicitVRLittleEndian+"\x00"), []byte("1.2.840.10008.1.2.5\x00")), "not supported"},
	}
	// Cut anywhere: an error naming the file, never a panic or a result.
	for n := 0; n < len(good)-1; n += 37 {
		if _, err := Parse("cut.dcm", good[:n]); err == nil || !strings.Contains(err.Error(), "cut.dcm") {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.dcm", c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.dcm") {
				t.Fatalf("got %v, want an error naming bad.dcm and %q", err, c.want)
			}
		})
	}
}

func TestCIELab(t *testing.T) {
	cases := []struct {
		rgb  [3]uint8
		want [3]uint16
		tol  int
	}{
		{[3]uint8{221, 130, 101}, [3]uint16{41661, 41167, 40792}, 4}, // pydicom's dcmqi liver sample (Slicer's liver colour)
		{[3]uint8{255, 255, 255}, [3]uint16{65535, 32896, 32896}, 4},
		{[3]uint8{0, 0, 0}, [3]uint16{0, 32896, 32896}, 1},
	}
	for _, c := range cases {
		got := RGBToDICOMLab(c.rgb)
		for i := range got {
			if d := int(got[i]) - int(c.want[i]); d > c.tol || d < -c.tol {
				t.Errorf("%v -> %v, want %v", c.rgb, got, c.want)
			}
		}
	}
	for l := uint16(1); l <= 16; l++ {
		c := [3]uint8{uint8(l * 15), uint8(255 - l*13), uint8(l * 7)}
		back := DICOMLabToRGB(RGBToDICOMLab(c))
		for i := range c {
			if d := int(back[i]) - int(c[i]); d > 1 || d < -1 {
				t.Errorf("%v -> %v", c, back)
			}
		}
	}
}

func TestFmtDS(t *testing.T) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1.5, -125, -235.2, 0.939692620785908, 1234567890123456, -0.1234567890123456789, 1e-20, 256.12345678901234, -679.800049} {
		s := fmtDS(x)
		if len(s) > 16 {
			t.Errorf("%v -> %q: %d characters", x, s, len(s))
		}
		y, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(y-x) > 1e-13*math.Max(1, math.Abs(x)) {
			t.Errorf("%v -> %q -> %v", x, s, y)
		}
	}
	// A value parsed from a DS prints back as the same number.
	for _, s := range []string{"-125.000000", "0.939693", "-2.352000e+02", "12345678.9012345"} {
		x, _ := strconv.ParseFloat(s, 64)
		if y, _ := strconv.ParseFloat(fmtDS(x), 64); y != x {
			t.Errorf("%s -> %s", s, fmtDS(x))
		}
	}
}

func TestSegmentsFromMeta(t *testing.T) {
	labels := []volume.Label{{Value: 1, Name: "liver", Color: [3]uint8{221, 130, 101}}, {Value: 2, Name: "lesion"}}
	cases := []struct {
		name      string
		meta      string
		algo      [2]string
		algoName  string
		model     string
		typeValue string
	}{
		{"gui: one label from the model, one brushed", `{"tool":"medsa","model":"sam@2","masks":[{"label":1,"model":"sam@2"}]}`, [2]string{Semiautomatic, Manual}, "sam@2", "sam@2", ""},
		{"gui: nothing from a model", `{"tool":"medsa","model":"sam@2","masks":null}`, [2]string{Manual, Manual}, "", "sam@2", ""},
		{"cli: one model", `{"tool":"medsa segment","model":"sam@3"}`, [2]string{Semiautomatic, Semiautomatic}, "sam@3", "sam@3", ""},
		{"no meta", ``, [2]string{"", ""}, "", "", ""},
		{"garbage", `[1,2`, [2]string{"", ""}, "", "", ""},
		{"codes", `{"segments":[{"label":1,"type":{"value":"10200004","scheme":"SCT","meaning":"Liver"}}]}`, [2]string{"", ""}, "", "", "10200004"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			segs, model := SegmentsFromMeta(labels, json.RawMessage(c.meta))
			if len(segs) != 2 || segs[0].Algorithm != c.algo[0] || segs[1].Algorithm != c.algo[1] || segs[0].AlgorithmName != c.algoName || model != c.model {
				t.Fatalf("got %+v, model %q", segs, model)
			}
			if c.typeValue != "" && segs[0].Type.Value != c.typeValue {
				t.Fatalf("type %+v", segs[0].Type)
			}
			if segs[0].Name != "liver" || segs[0].Color != labels[0].Color {
				t.Fatalf("name/colour lost: %+v", segs[0])
			}
		})
	}
}

// Non-ASCII names switch an ASCII source to UTF-8; Latin-1 sources keep Latin-1.
func TestCharset(t *testing.T) {
	cases := []struct{ src, name, wantCS, wantName string }{
		{"", "Läsion", "ISO_IR 192", "Läsion"},
		{"ISO_IR 100", "Läsion", "ISO_IR 100", "L\xe4sion"},
		{"ISO_IR 100", "肝臓", "ISO_IR 100", "??"},
		{"ISO_IR 100", "liver", "ISO_IR 100", "liver"},
		{"", `a\b`, "", "a b"},
	}
	for _, c := range cases {
		r := axialGeom.refs()
		r.Study.SpecificCharacterSet = c.src
		data := encode(t, labelsOf(axialGeom, 1), r, Options{Segments: []Segment{{Label: 1, Name: c.name}}})
		ds, _, err := parseFile(data)
		if err != nil {
			t.Fatal(err)
		}
		if cs := ds.str(tg(0x0008, 0x0005)); cs != c.wantCS {
			t.Errorf("%q on %q: charset %q, want %q", c.name, c.src, cs, c.wantCS)
		}
		if n := ds.item(tg(0x0062, 0x0002)).str(tg(0x0062, 0x0005)); n != c.wantName {
			t.Errorf("%q on %q: name %q, want %q", c.name, c.src, n, c.wantName)
		}
	}
}

func TestWriteAtomicAndDeterministicUIDs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "seg.dcm")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := &volume.LabelMap{Size: [3]int{1, 1, 1}, Data: []uint16{1}}
	if err := Write(p, bad, axialGeom.refs(), Options{}); err == nil {
		t.Fatal("wrote a mask off the grid")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatal("a failed write touched the old file")
	}
	opt := Options{SeriesInstanceUID: "2.25.5", SOPInstanceUID: "2.25.6", Now: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	if err := Write(p, labelsOf(axialGeom, 1), axialGeom.refs(), opt); err != nil {
		t.Fatal(err)
	}
	s, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.SOPInstanceUID != "2.25.6" || s.SeriesInstanceUID != "2.25.5" || s.FrameOfReferenceUID != "2.25.2" || s.ReferencedSeries[0] != "2.25.1" {
		t.Fatalf("%+v", s)
	}
	u := NewUID()
	if !strings.HasPrefix(u, "2.25.") || len(u) > 64 || u == NewUID() {
		t.Fatalf("UID %s", u)
	}
}

func BenchmarkWriteSEG(b *testing.B) {
	g := geom{nx: 512, ny: 512, nz: 64, row: [3]float64{1, 0, 0}, col: [3]float64{0, 1, 0}, ps: [2]float64{0.7, 0.7}, step: 1}
	r := g.refs()
	lm := &volume.LabelMap{Size: r.Size, Affine: r.Affine, Data: make([]uint16, g.nx*g.ny*g.nz)}
	for k := 0; k < g.nz; k++ {
		for j := 0; j < g.ny; j++ {
			for i := 0; i < g.nx; i++ {
				dx, dy, dz := float64(i-256), float64(j-256), float64(k-32)*4
				if d := dx*dx + dy*dy + dz*dz; d < 200*200 {
					lm.Data[lm.Index(i, j, k)] = 1 + uint16(d/(100*100))
				}
			}
		}
	}
	b.SetBytes(int64(len(lm.Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var w countWriter
		if err := Encode(&w, lm, r, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

// The same SEG as pydicom rewrites it in the other uncompressed syntaxes
// (testdata/small_*.dcm, from Encode of labelsOf(oddGeom, 1, 2)) reads the same.
func TestTransferSyntaxes(t *testing.T) {
	want := renumbered(labelsOf(oddGeom, 1, 2))
	for _, name := range []string{"small_explicit_le.dcm", "small_implicit_le.dcm", "small_explicit_be.dcm", "small_deflated.dcm"} {
		t.Run(name, func(t *testing.T) {
			s, err := ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Segments) != 2 || s.Segments[0].AlgorithmName != "m@1" || s.FrameOfReferenceUID != "2.25.2" {
				t.Fatalf("%+v", s.Segments)
			}
			res, err := s.Place(oddGeom.refs())
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if res.LabelMap.Data[i] != want[i] {
					t.Fatalf("voxel %d: %d, want %d", i, res.LabelMap.Data[i], want[i])
				}
			}
		})
	}
}
