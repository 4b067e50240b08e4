package metaimage

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/nrrd"
	"github.com/medsa/medsa/io/volume"
)

const itkData = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data"

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
	for i := range want.Data {
		if got.Data[i] != want.Data[i] {
			t.Fatalf("value %d = %v, want %v", i, got.Data[i], want.Data[i])
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestITKFiles: MetaImages written by ITK itself (Debian's insighttoolkit5-examples)
// read with ITK's conventions: the oblique ±30° headers give the same grid and
// voxels as ITK's NRRD twins of the same images, and offsets/spacings land in
// RAS+ as ITK's LPS says.
func TestITKFiles(t *testing.T) {
	dir := testfiles.Path(t, itkData)
	twins := []struct{ mhd, nhdr string }{
		{"BrainProtonDensitySliceBorder20.mhd", "BrainProtonDensitySliceBorder20.nhdr"},
		{"BrainProtonDensitySliceBorder20DirectionPlus30.mhd", "BrainProtonDensitySliceBorder20DirectionPlus30.nhdr"},
		{"BrainT1SliceBorder20DirectionPlus30.mhd", "BrainT1SliceBorder20DirectionPlus30.nhdr"},
		{"BrainProtonDensitySliceShifted13x17yDirectionPlus30.mhd", "BrainProtonDensitySliceShifted13x17yDirectionPlus30.nhdr"},
	}
	for _, c := range twins {
		t.Run(c.mhd, func(t *testing.T) {
			v, err := Read(filepath.Join(dir, c.mhd))
			if err != nil {
				t.Fatal(err)
			}
			w, err := nrrd.Read(filepath.Join(dir, c.nhdr))
			if err != nil {
				t.Fatal(err)
			}
			sameVolume(t, v, w, 1e-6) // the headers print cos 30° to 7 and 6 digits
		})
	}
	// Minus30 is Plus30 rotated the other way: ITK's direction of axis 0 is (cos, -sin).
	v, err := Read(filepath.Join(dir, "BrainProtonDensitySliceBorder20DirectionMinus30.mhd"))
	if err != nil {
		t.Fatal(err)
	}
	c, s := 0.8660254, 0.5
	if want := (volume.Affine{{-c, -s, 0, 0}, {s, -c, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}); v.Affine != want {
		t.Errorf("Minus30 affine %v, want %v", v.Affine, want)
	}
	geo := []struct {
		file    string
		size    [3]int
		affine  volume.Affine
		dtype   string
		channel int
		note    string
	}{
		{"CorpusCallosumMeanShape.mha", [3]int{58, 31, 1}, volume.Affine{{-2, 0, 0, 57.5}, {0, -2, 0, 30.5}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "float32", 1, ""},
		{"ResampleImageFilterInput2x3b.mha", [3]int{280, 240, 1}, volume.Affine{{-0.5, 0, 0, -60}, {0, -0.75, 0, -70}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "uint8", 1, ""},
		{"BrainProtonDensity3Slices.mha", [3]int{181, 217, 3}, volume.Affine{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "uint8", 1, ""},
		{"itkBrainSliceComplex.mha", [3]int{181, 217, 1}, volume.Affine{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "float32", 1, "component 1 of 2"},
		{"BayesianClassifierInitializerMemberships.mhd", [3]int{181, 217, 1}, volume.Affine{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, "float32", 1, "component 1 of 4"},
	}
	for _, g := range geo {
		t.Run(g.file, func(t *testing.T) {
			v, err := Read(filepath.Join(dir, g.file))
			if err != nil {
				t.Fatal(err)
			}
			if v.Size != g.size || v.Affine != g.affine || v.DataType != g.dtype || v.Channels != g.channel {
				t.Errorf("got %v %v %s x%d, want %v %v %s x%d", v.Size, v.Affine, v.DataType, v.Channels, g.size, g.affine, g.dtype, g.channel)
			}
			if g.note != "" && !strings.Contains(strings.Join(v.Notes, ";"), g.note) {
				t.Errorf("notes %q lack %q", v.Notes, g.note)
			}
		})
	}
	// The 3-slice file's voxels are its .raw bytes.
	v, err = Read(filepath.Join(dir, "BrainProtonDensity3Slices.mha"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "BrainProtonDensity3Slices.raw"))
	for i, b := range raw {
		if v.Data[i] != float32(b) {
			t.Fatalf("voxel %d: %v, want %d", i, v.Data[i], b)
		}
	}
}

func realT1(t testing.TB) *volume.Volume {
	t.Helper()
	v, err := nifti.Read(testfiles.Path(t, itkData+"/KmeansTest_T1UCharRaw.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// geometryFields writes the affine as ITK does: TransformMatrix one axis
// direction after another, in LPS.
func geometryFields(a volume.Affine) string {
	sp := a.Spacing()
	flip := [3]float64{-1, -1, 1}
	var d, o, s []string
	for c := 0; c < 3; c++ {
		for r := 0; r < 3; r++ {
			d = append(d, fmt.Sprintf("%.17g", flip[r]*a[r][c]/sp[c]))
		}
		o = append(o, fmt.Sprintf("%.17g", flip[c]*a[c][3]))
		s = append(s, fmt.Sprintf("%.17g", sp[c]))
	}
	return fmt.Sprintf("TransformMatrix = %s\nOffset = %s\nElementSpacing = %s\n", strings.Join(d, " "), strings.Join(o, " "), strings.Join(s, " "))
}

func encode(vals []float32, typ string, big bool) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	var buf bytes.Buffer
	for _, x := range vals {
		switch typ {
		case "MET_UCHAR":
			buf.WriteByte(byte(x))
		case "MET_CHAR":
			buf.WriteByte(byte(int8(x - 128)))
		case "MET_SHORT":
			binary.Write(&buf, bo, int16(x))
		case "MET_USHORT":
			binary.Write(&buf, bo, uint16(x))
		case "MET_INT", "MET_LONG":
			binary.Write(&buf, bo, int32(x))
		case "MET_UINT", "MET_ULONG":
			binary.Write(&buf, bo, uint32(x))
		case "MET_LONG_LONG":
			binary.Write(&buf, bo, int64(x))
		case "MET_ULONG_LONG":
			binary.Write(&buf, bo, uint64(x))
		case "MET_FLOAT":
			binary.Write(&buf, bo, x)
		case "MET_DOUBLE":
			binary.Write(&buf, bo, float64(x))
		}
	}
	return buf.Bytes()
}

func zl(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestHandMade: headers written by hand around the real T1's voxels, in every
// element type, both byte orders, compressed, detached (one file, HeaderSize,
// HeaderSize -1, LIST, a slice pattern), ASCII, 4D and RGB; each reads back the
// voxels and world geometry of the NIfTI path exactly.
func TestHandMade(t *testing.T) {
	ref := realT1(t)
	dir := t.TempDir()
	geo := geometryFields(ref.Affine)
	n := ref.NumVoxels()
	slice := ref.Size[0] * ref.Size[1]
	base := func(typ string, msb bool) string {
		return fmt.Sprintf("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = %v\n%sDimSize = %d %d %d\nAnatomicalOrientation = RAI\nElementType = %s\n",
			map[bool]string{false: "False", true: "True"}[msb], geo, ref.Size[0], ref.Size[1], ref.Size[2], typ)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type tc struct {
		name string
		path string
		want *volume.Volume
	}
	var cases []tc
	for _, typ := range []string{"MET_UCHAR", "MET_CHAR", "MET_SHORT", "MET_USHORT", "MET_INT", "MET_UINT", "MET_LONG", "MET_ULONG", "MET_LONG_LONG", "MET_ULONG_LONG", "MET_FLOAT", "MET_DOUBLE"} {
		for _, msb := range []bool{false, true} {
			want := ref
			if typ == "MET_CHAR" {
				w := *ref
				w.Data = make([]float32, n)
				for i, x := range ref.Data {
					w.Data[i] = x - 128
				}
				want = &w
			}
			name := fmt.Sprintf("%s_msb%v.mha", typ, msb)
			cases = append(cases, tc{name, write(name, append([]byte(base(typ, msb)+"ElementDataFile = LOCAL\n"), encode(ref.Data, typ, msb)...)), want})
		}
	}
	s16 := encode(ref.Data, "MET_SHORT", false)
	z := zl(s16)
	cases = append(cases,
		tc{"compressed LOCAL", write("z.mha", append([]byte(base("MET_SHORT", false)+fmt.Sprintf("CompressedData = True\nCompressedDataSize = %d\nElementDataFile = LOCAL\n", len(z))), z...)), ref},
		tc{"compressed LOCAL no size", write("z2.mha", append([]byte(base("MET_SHORT", false)+"CompressedData = True\nElementDataFile = LOCAL\n"), z...)), ref},
		tc{"compressed detached", func() string {
			write("z.zraw", z)
			return write("z.mhd", []byte(base("MET_SHORT", false)+fmt.Sprintf("CompressedData = True\nCompressedDataSize = %d\nElementDataFile = z.zraw\n", len(z))))
		}(), ref},
		tc{"detached raw", func() string {
			write("d.raw", s16)
			return write("d.mhd", []byte(base("MET_SHORT", false)+"ElementDataFile = d.raw\n"))
		}(), ref},
		tc{"HeaderSize", func() string {
			write("hs.raw", append([]byte("0123456789"), s16...))
			return write("hs.mhd", []byte(base("MET_SHORT", false)+"HeaderSize = 10\nElementDataFile = hs.raw\n"))
		}(), ref},
		tc{"HeaderSize -1", func() string {
			write("hs1.raw", append([]byte("some DICOM-like preamble"), s16...))
			return write("hs1.mhd", []byte(base("MET_SHORT", false)+"HeaderSize = -1\nElementDataFile = hs1.raw\n"))
		}(), ref},
		tc{"LIST", func() string {
			var names []string
			for k := 0; k < ref.Size[2]; k++ {
				nm := fmt.Sprintf("l%02d.raw", k)
				write(nm, s16[2*k*slice:2*(k+1)*slice])
				names = append(names, nm)
			}
			return write("list.mhd", []byte(base("MET_SHORT", false)+"ElementDataFile = LIST 2D\n"+strings.Join(names, "\n")+"\n"))
		}(), ref},
		tc{"slice pattern", func() string {
			for k := 0; k < ref.Size[2]; k++ {
				write(fmt.Sprintf("p%03d.raw", k+1), s16[2*k*slice:2*(k+1)*slice])
			}
			return write("pat.mhd", []byte(base("MET_SHORT", false)+fmt.Sprintf("ElementDataFile = p%%03d.raw 1 %d 1\n", ref.Size[2])))
		}(), ref},
		tc{"ASCII", func() string {
			var b strings.Builder
			for i, x := range ref.Data {
				fmt.Fprintf(&b, "%v", x)
				if i%128 == 127 {
					b.WriteByte('\n')
				} else {
					b.WriteByte(' ')
				}
			}
			return write("a.mha", []byte(strings.Replace(base("MET_SHORT", false), "BinaryData = True", "BinaryData = False", 1)+"ElementDataFile = LOCAL\n"+b.String()))
		}(), ref},
		tc{"4D first volume", func() string {
			h := strings.Replace(base("MET_UCHAR", false), "NDims = 3", "NDims = 4", 1)
			h = strings.Replace(h, fmt.Sprintf("DimSize = %d %d %d", ref.Size[0], ref.Size[1], ref.Size[2]), fmt.Sprintf("DimSize = %d %d %d 2", ref.Size[0], ref.Size[1], ref.Size[2]), 1)
			a := ref.Affine
			sp := a.Spacing()
			var d []string
			for c := 0; c < 4; c++ {
				for r := 0; r < 4; r++ {
					x := 0.0
					switch {
					case c < 3 && r < 3:
						x = []float64{-1, -1, 1}[r] * a[r][c] / sp[c]
					case c == 3 && r == 3:
						x = 1
					}
					d = append(d, fmt.Sprintf("%.17g", x))
				}
			}
			h = strings.Replace(h, "TransformMatrix = "+strings.SplitN(strings.SplitN(geo, "TransformMatrix = ", 2)[1], "\n", 2)[0], "TransformMatrix = "+strings.Join(d, " "), 1)
			o := strings.SplitN(strings.SplitN(geo, "Offset = ", 2)[1], "\n", 2)[0]
			h = strings.Replace(h, "Offset = "+o, "Offset = "+o+" 0", 1)
			sps := strings.SplitN(strings.SplitN(geo, "ElementSpacing = ", 2)[1], "\n", 2)[0]
			h = strings.Replace(h, "ElementSpacing = "+sps, "ElementSpacing = "+sps+" 2.5", 1)
			data := encode(ref.Data, "MET_UCHAR", false)
			return write("4d.mha", append([]byte(h+"ElementDataFile = LOCAL\n"), append(data, make([]byte, n)...)...))
		}(), ref},
	)
	rgb := *ref
	rgb.Channels = 3
	rgb.Data = make([]float32, 3*n)
	for i, x := range ref.Data {
		rgb.Data[3*i], rgb.Data[3*i+1], rgb.Data[3*i+2] = x, 255-x, 9
	}
	cases = append(cases, tc{"RGB", write("rgb.mha", append([]byte(base("MET_UCHAR", false)+"ElementNumberOfChannels = 3\nElementDataFile = LOCAL\n"), encode(rgb.Data, "MET_UCHAR", false)...)), &rgb})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Read(c.path)
			if err != nil {
				t.Fatal(err)
			}
			sameVolume(t, v, c.want, 1e-9)
			if c.name == "4D first volume" && (len(v.Notes) == 0 || !strings.Contains(v.Notes[0], "volume 1 of 2")) {
				t.Errorf("notes %q", v.Notes)
			}
		})
	}
}

// TestWrite: label maps and images written as .mha and .mhd read back exactly on
// the source grid, with the fields ITK reads.
func TestWrite(t *testing.T) {
	ref := realT1(t)
	dir := t.TempDir()
	m := volume.NewLabelMap(ref)
	wide := volume.NewLabelMap(ref)
	for i, x := range ref.Data {
		if x > 100 {
			m.Data[i] = 3
		}
		wide.Data[i] = uint16(x) * 200
	}
	for _, c := range []struct {
		name string
		m    *volume.LabelMap
		typ  string
	}{{"l.mha", m, "MET_UCHAR"}, {"l.mhd", m, "MET_UCHAR"}, {"w.mha", wide, "MET_USHORT"}} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := WriteLabelMap(p, c.m); err != nil {
				t.Fatal(err)
			}
			lm, err := ReadLabelMap(p)
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
			b, _ := os.ReadFile(p)
			hdr := string(b[:min(len(b), 600)])
			for _, want := range []string{"ObjectType = Image\n", "NDims = 3\n", "CompressedData = True\n", "ElementType = " + c.typ + "\n",
				"DimSize = 128 128 62\n", "AnatomicalOrientation = RIP\n"} {
				if !strings.Contains(hdr, want) {
					t.Errorf("header lacks %q:\n%s", want, hdr)
				}
			}
		})
	}
	p := filepath.Join(dir, "t1.mha")
	if err := WriteVolume(p, ref); err != nil {
		t.Fatal(err)
	}
	v, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	sameVolume(t, v, ref, 1e-12)
}

// TestBadInput: broken headers and data give clear errors naming the file, never
// a panic, and claims the data cannot back allocate nothing large.
func TestBadInput(t *testing.T) {
	restore := volume.SetMemoryLimit(64<<20, "test")
	defer restore()
	h := "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
	ok8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty file", nil},
		{"not metaimage", "not a MetaImage", []byte("hello world\n")},
		{"no data file", "without ElementDataFile", []byte(h)},
		{"NDims 5", "2D, 3D and 4D", []byte(strings.Replace(h, "NDims = 3", "NDims = 5", 1) + "ElementDataFile = LOCAL\n")},
		{"DimSize short", "DimSize: 2 values, want 3", []byte(strings.Replace(h, "2 2 2", "2 2", 1) + "ElementDataFile = LOCAL\n")},
		{"DimSize zero", "axis 1 has 0", []byte(strings.Replace(h, "2 2 2", "2 0 2", 1) + "ElementDataFile = LOCAL\n")},
		{"type", "not supported", []byte(strings.Replace(h, "MET_UCHAR", "MET_QUATERNION", 1) + "ElementDataFile = LOCAL\n")},
		{"object", "not an image", []byte(strings.Replace(h, "= Image", "= Tube", 1) + "ElementDataFile = LOCAL\n")},
		{"short", "file holds 3", append([]byte(h+"ElementDataFile = LOCAL\n"), 1, 2, 3)},
		{"huge", "memory", []byte(strings.Replace(h, "2 2 2", "1024 1024 512", 1) + "CompressedData = True\nElementDataFile = LOCAL\n")},
		{"zlib short", "shorter", append([]byte(h+"CompressedData = True\nElementDataFile = LOCAL\n"), zl(ok8[:4])...)},
		{"zlib long", "longer", append([]byte(h+"CompressedData = True\nElementDataFile = LOCAL\n"), zl(append(ok8, 1, 2))...)},
		{"zlib garbage", "zlib", []byte(h + "CompressedData = True\nElementDataFile = LOCAL\nnot zlib")},
		{"compressed size beyond file", "CompressedDataSize 99", []byte(h + "CompressedData = True\nCompressedDataSize = 99\nElementDataFile = LOCAL\nxx")},
		{"singular", "singular", []byte(h + "TransformMatrix = 1 0 0 1 0 0 0 0 1\nElementDataFile = LOCAL\n" + string(ok8))},
		{"bad spacing", "not a number", []byte(h + "ElementSpacing = 1 x 1\nElementDataFile = LOCAL\n")},
		{"channels", "not a count", []byte(h + "ElementNumberOfChannels = 0\nElementDataFile = LOCAL\n")},
		{"ascii word", "not a number", []byte(h + "BinaryData = False\nElementDataFile = LOCAL\n1 2 3 x 5 6 7 8")},
		{"detached in memory", "not in this file", []byte(h + "ElementDataFile = x.raw\n")},
		{"bad pattern", "integer conversion", []byte(h + "ElementDataFile = x%s.raw 1 2 1\n")},
		{"bad line", "not Key = Value", []byte(h + "garbage line\nElementDataFile = LOCAL\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes("bad.mha", c.data)
			if err == nil {
				t.Fatalf("accepted: %v", v.Size)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.mha") {
				t.Errorf("error %q, want it to name the file and say %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.mhd")
	os.WriteFile(p, []byte(h+"ElementDataFile = x.raw\n"), 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "x.raw") {
		t.Errorf("missing data file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "x.raw"), ok8[:5], 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "hold 5") {
		t.Errorf("short data file: %v", err)
	}
}

// BenchmarkReadCompressedMHA times the hot path: inflate and convert a real volume.
func BenchmarkReadCompressedMHA(b *testing.B) {
	ref := realT1(b)
	p := filepath.Join(b.TempDir(), "t1.mha")
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

// A volume count whose byte size wraps an int64 (review of 2026-12-02): a clear error, not a panic.
func TestWrappingSizes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wrap.mhd")
	os.WriteFile(p, []byte("ObjectType = Image\nNDims = 4\nDimSize = 2 2 2 4611686018427387904\nElementType = MET_DOUBLE\nElementDataFile = x.raw\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.raw"), make([]byte, 64), 0o644)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic %v", r)
		}
	}()
	if _, err := Read(p); err == nil {
		t.Error("accepted")
	}
}
