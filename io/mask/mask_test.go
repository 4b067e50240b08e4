package mask

import (
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/raster"
	"github.com/medsa/medsa/io/volume"
)

// testdata returns the path of a fetched test image (see internal/testdata).
func testdata(t testing.TB, rel string) string {
	t.Helper()
	return td.Path(t, rel)
}

const itk = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/"

// The ITK T1 and its k-means segmentation: a real image with a real label map on its grid.
func t1AndSeg(t *testing.T) (*volume.Volume, string) {
	v, err := nifti.Read(testdata(t, itk+"KmeansTest_T1UCharRaw.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return v, testdata(t, itk+"KmeansTest_T1KmeansPrelimSegmentation.nii.gz")
}

type meta struct {
	Model   string      `json:"model"`
	Prompts [][3]int    `json:"prompts"`
	Window  [2]float64  `json:"window"`
	Extra   interface{} `json:"extra,omitempty"`
}

func TestSaveLoadNifti(t *testing.T) {
	v, segPath := t1AndSeg(t)
	m, labels, err := Load(segPath, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) < 2 || m.MaxLabel() == 0 {
		t.Fatalf("labels %v max %d", labels, m.MaxLabel())
	}
	labels[0].Name = "CSF"
	md := meta{Model: "medsa-vitb", Prompts: [][3]int{{10, 20, 30}}, Window: v.Window}
	for _, ext := range []string{".nii.gz", ".nii"} {
		out := filepath.Join(t.TempDir(), "seg"+ext)
		if err := Save(out, m, labels, md); err != nil {
			t.Fatal(err)
		}
		back, bl, err := Load(out, v)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.Data {
			if back.Data[i] != m.Data[i] {
				t.Fatalf("%s: voxel %d = %d, want %d", ext, i, back.Data[i], m.Data[i])
			}
		}
		if bl[0].Name != "CSF" || len(bl) != len(labels) {
			t.Errorf("%s: labels %v", ext, bl)
		}
		sc, err := ReadSidecar(out)
		if err != nil || sc == nil {
			t.Fatalf("sidecar: %v", err)
		}
		var got meta
		if err := json.Unmarshal(sc.Meta, &got); err != nil || got.Model != "medsa-vitb" || got.Prompts[0] != [3]int{10, 20, 30} {
			t.Errorf("meta %s: %v", sc.Meta, err)
		}
		if sc.Size != v.Size || sc.Affine != v.Affine {
			t.Errorf("sidecar grid %v %v", sc.Size, sc.Affine)
		}
		if filepath.Base(SidecarPath(out)) != "seg.json" {
			t.Errorf("sidecar path %s", SidecarPath(out))
		}
	}
}

func TestLoadGridMismatch(t *testing.T) {
	v, segPath := t1AndSeg(t)
	cases := []struct {
		name  string
		edit  func(v *volume.Volume)
		wants []string
	}{
		{"shifted origin", func(v *volume.Volume) { v.Affine[1][3] += 0.5 }, []string{"affine[1][3] (origin y)"}},
		{"spacing", func(v *volume.Volume) { v.Affine[0][0] *= 1.1; v.Affine[2][3] -= 3 }, []string{"affine[0][0]", "affine[2][3]"}},
		{"size", func(v *volume.Volume) {
			v.Size[2]--
			v.Data = v.Data[:v.NumVoxels()]
		}, []string{"size 128x128x62, image 128x128x61"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := *v
			c.edit(&w)
			_, _, err := Load(segPath, &w)
			var ge *GridError
			if !errors.As(err, &ge) {
				t.Fatalf("want a GridError, got %v", err)
			}
			if len(ge.Diffs) != len(c.wants) {
				t.Errorf("diffs %q, want %d", ge.Diffs, len(c.wants))
			}
			for _, want := range c.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q lacks %q", err, want)
				}
			}
		})
	}
	// Within tolerance (0.005 mm) is the same grid.
	w := *v
	w.Affine[0][3] += 0.005
	if _, _, err := Load(segPath, &w); err != nil {
		t.Errorf("0.005 mm off rejected: %v", err)
	}
}

func TestLoadRejectsNonLabels(t *testing.T) {
	v, err := nifti.Read(testdata(t, "python3-nibabel/usr/lib/python3/dist-packages/nibabel/tests/data/reoriented_anat_moved.nii")) // float32
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(v.Source, v)
	if err == nil || !strings.Contains(err.Error(), "not a label map") {
		t.Errorf("float image loaded as a mask: %v", err)
	}
}

func TestPNGMasks(t *testing.T) {
	img, err := raster.Read(testdata(t, "python3-skimage/usr/lib/python3/dist-packages/skimage/data/camera.png"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, top := range []uint16{1, 255, 300} {
		m := volume.NewLabelMap(img)
		for i := range m.Data {
			if img.Data[i] < 40 {
				m.Data[i] = top
			}
		}
		out := filepath.Join(dir, "cam.png")
		if err := Save(out, m, nil, nil); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(out)
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 512 || cfg.Height != 512 {
			t.Fatalf("png %v %v", cfg, err)
		}
		back, labels, err := Load(out, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(labels) != 1 || labels[0].Value != top {
			t.Errorf("labels %v", labels)
		}
		for i := range m.Data {
			if back.Data[i] != m.Data[i] {
				t.Fatalf("top %d: pixel %d = %d, want %d", top, i, back.Data[i], m.Data[i])
			}
		}
		// The same mask as NIfTI carries ITK's grid for a PNG (LPS identity).
		nii := filepath.Join(dir, "cam.nii.gz")
		if err := Save(nii, m, nil, nil); err != nil {
			t.Fatal(err)
		}
		lv, err := nifti.Read(nii)
		if err != nil || lv.Affine != raster.Affine() || lv.Size != img.Size {
			t.Errorf("nifti of a PNG mask: %v %v %v", err, lv.Affine, lv.Size)
		}
	}
	// A 3D mask cannot be one PNG.
	v, _ := t1AndSeg(t)
	if err := Save(filepath.Join(dir, "vol.png"), volume.NewLabelMap(v), nil, nil); err == nil || !strings.Contains(err.Error(), "slice") {
		t.Errorf("3D mask as PNG: %v", err)
	}
	if err := Save(filepath.Join(dir, "vol.jpg"), volume.NewLabelMap(v), nil, nil); err == nil {
		t.Error("jpg accepted")
	}
}

func TestSaveSlicePNG(t *testing.T) {
	v, segPath := t1AndSeg(t)
	m, _, err := Load(segPath, v)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for axis := 0; axis < 3; axis++ {
		idx := m.Size[axis] / 2
		out := filepath.Join(dir, "slice.png")
		if err := SaveSlicePNG(out, m, axis, idx, nil); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(out)
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := m.SliceLabels(axis, idx)
		ua, va := volume.SliceAxes(axis)
		if img.Bounds().Dx() != m.Size[ua] || img.Bounds().Dy() != m.Size[va] {
			t.Fatalf("axis %d: %v", axis, img.Bounds())
		}
		nonzero := 0
		for y := 0; y < m.Size[va]; y++ {
			for x := 0; x < m.Size[ua]; x++ {
				r, _, _, _ := img.At(x, y).RGBA()
				if uint16(r>>8) != want[x+m.Size[ua]*y] {
					t.Fatalf("axis %d pixel %d,%d", axis, x, y)
				}
				if r != 0 {
					nonzero++
				}
			}
		}
		if nonzero == 0 {
			t.Errorf("axis %d: empty slice proves nothing", axis)
		}
		sc, err := ReadSidecar(out)
		if err != nil || sc.Slice == nil || sc.Slice.Axis != axis || sc.Slice.Index != idx {
			t.Errorf("sidecar slice %+v %v", sc, err)
		}
	}
	if err := SaveSlicePNG(filepath.Join(dir, "x.png"), m, 2, 62, nil); err == nil {
		t.Error("slice outside accepted")
	}
}

func TestPreview(t *testing.T) {
	// 2D photo: screen = image, labels blended.
	img, err := raster.Read(testdata(t, "python3-skimage/usr/lib/python3/dist-packages/skimage/data/astronaut.png"))
	if err != nil {
		t.Fatal(err)
	}
	m := volume.NewLabelMap(img)
	m.Data[m.Index(10, 20, 0)] = 1
	out := filepath.Join(t.TempDir(), "prev.png")
	if err := SavePreviewPNG(out, img, m, volume.Axial, 0, []volume.Label{{Value: 1, Name: "x", Color: [3]uint8{0, 255, 0}}}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	p, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := p.At(5, 5).RGBA()
	if float32(r>>8) != img.At(5, 5, 0, 0) || float32(g>>8) != img.At(5, 5, 0, 1) || float32(b>>8) != img.At(5, 5, 0, 2) {
		t.Errorf("unlabelled pixel changed: %d %d %d vs %v", r>>8, g>>8, b>>8, img.Data[3*(5+512*5):3*(5+512*5)+3])
	}
	_, g, _, _ = p.At(10, 20).RGBA()
	if want := uint32(0.5*float64(img.At(10, 20, 0, 1)) + 127.5 + 0.5); g>>8 != want {
		t.Errorf("labelled pixel green %d, want %d", g>>8, want)
	}
	// RAS-stored volume, axial: patient right (i = 0) on screen left is wrong; it goes right.
	v := &volume.Volume{Size: [3]int{4, 3, 2}, Channels: 1, Affine: volume.Identity(), Window: [2]float64{0.5, 1}}
	v.Data = make([]float32, 24)
	lm := volume.NewLabelMap(v)
	lm.Data[lm.Index(0, 0, 1)] = 2
	pi, err := Preview(v, lm, volume.Axial, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := pi.NRGBAAt(3, 2); c.G != 128 { // label 2 is green; screen (w-1, h-1)
		t.Errorf("voxel (0,0) of a RAS volume shown at %v, want green at bottom right", c)
	}
	// Mismatched mask refused.
	bad := volume.NewLabelMap(v)
	bad.Affine[0][3] = 5
	if _, err := Preview(v, bad, volume.Axial, 0, nil); err == nil {
		t.Error("mask on another grid previewed")
	}
}

func BenchmarkSaveNiftiGz(b *testing.B) {
	v := &volume.Volume{Size: [3]int{256, 256, 128}, Channels: 1, Affine: volume.Identity()}
	m := volume.NewLabelMap(v)
	for i := range m.Data {
		if i%7 < 3 {
			m.Data[i] = 1
		}
	}
	out := filepath.Join(b.TempDir(), "m.nii.gz")
	for b.Loop() {
		if err := Save(out, m, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// A colour-coded label PNG (as some tools export) loads through its sidecar's
// colours; an unknown colour is named in the error.
func TestLoadColourPNG(t *testing.T) {
	img, err := raster.Read(testdata(t, "python3-skimage/usr/lib/python3/dist-packages/skimage/data/camera.png"))
	if err != nil {
		t.Fatal(err)
	}
	m := volume.NewLabelMap(img)
	for i := range m.Data {
		switch {
		case img.Data[i] < 30:
			m.Data[i] = 1
		case img.Data[i] > 220:
			m.Data[i] = 2
		}
	}
	labels := []volume.Label{{Value: 1, Name: "coat", Color: [3]uint8{200, 30, 30}}, {Value: 2, Name: "sky", Color: [3]uint8{20, 40, 250}}}
	dir := t.TempDir()
	p := filepath.Join(dir, "colour.png")
	if err := Save(p, m, labels, nil); err != nil { // writes the sidecar
		t.Fatal(err)
	}
	// Replace the index PNG by a colour-coded one.
	rgb := image.NewRGBA(image.Rect(0, 0, m.Size[0], m.Size[1]))
	for i, l := range m.Data {
		c := color.RGBA{0, 0, 0, 255}
		if l > 0 {
			lc := labels[l-1].Color
			c = color.RGBA{lc[0], lc[1], lc[2], 255}
		}
		rgb.SetRGBA(i%m.Size[0], i/m.Size[0], c)
	}
	f, _ := os.Create(p)
	png.Encode(f, rgb)
	f.Close()
	back, bl, err := Load(p, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(bl) != 2 || bl[1].Name != "sky" {
		t.Errorf("labels %v", bl)
	}
	for i := range m.Data {
		if back.Data[i] != m.Data[i] {
			t.Fatalf("pixel %d = %d, want %d", i, back.Data[i], m.Data[i])
		}
	}
	rgb.SetRGBA(3, 4, color.RGBA{1, 2, 3, 255})
	f, _ = os.Create(p)
	png.Encode(f, rgb)
	f.Close()
	if _, _, err := Load(p, img); err == nil || !strings.Contains(err.Error(), "(1, 2, 3) at pixel (3, 4)") {
		t.Errorf("unknown colour: %v", err)
	}
}
