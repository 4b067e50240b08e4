package render

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

func TestOrientLetters(t *testing.T) {
	lps := volume.Affine{{-0.7, 0, 0, 0}, {0, -0.7, 0, 0}, {0, 0, 2.5, 0}, {0, 0, 0, 1}}
	ras := volume.Identity()
	lsa := volume.Affine{{-1, 0, 0, 0}, {0, 0, 1, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}} // coronal acquisition
	rot := 0.3
	oblique := volume.Affine{{math.Cos(rot), -math.Sin(rot), 0, 0}, {math.Sin(rot), math.Cos(rot), 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	size := [3]int{10, 12, 14}
	cases := []struct {
		name    string
		a       volume.Affine
		p       volume.Plane
		letters [4]string
		tr      bool
		fx, fy  bool
	}{
		// DICOM-like LPS axial: i runs to patient left = screen right, j to posterior = down: no flips.
		{"lps axial", lps, volume.Axial, [4]string{"R", "L", "A", "P"}, false, false, false},
		{"ras axial", ras, volume.Axial, [4]string{"R", "L", "A", "P"}, false, true, true},
		{"ras coronal", ras, volume.Coronal, [4]string{"R", "L", "S", "I"}, false, true, true},
		{"ras sagittal", ras, volume.Sagittal, [4]string{"A", "P", "S", "I"}, false, true, true},
		{"lsa axial", lsa, volume.Axial, [4]string{"R", "L", "A", "P"}, false, false, true},
		{"lsa coronal", lsa, volume.Coronal, [4]string{"R", "L", "S", "I"}, false, false, true},
		{"lsa sagittal", lsa, volume.Sagittal, [4]string{"A", "P", "S", "I"}, true, true, true},
		{"oblique axial", oblique, volume.Axial, [4]string{"R", "L", "A", "P"}, false, true, true},
	}
	for _, c := range cases {
		axis := c.a.PlaneAxis(c.p, size)
		ua, va := volume.SliceAxes(axis)
		o := Orient(c.a, c.p, ua, va, false)
		if o.Letters != c.letters || o.Transposed != c.tr || o.FlipX != c.fx || o.FlipY != c.fy {
			t.Errorf("%s: got %+v, want letters %v tr %v fx %v fy %v", c.name, o, c.letters, c.tr, c.fx, c.fy)
		}
	}
}

// TestScreenSliceRoundTrip checks the mapping on anisotropic, flipped and transposed layouts.
func TestScreenSliceRoundTrip(t *testing.T) {
	for _, o := range []Orientation{{}, {FlipX: true}, {FlipY: true, Transposed: true}, {Transposed: true, FlipX: true, FlipY: true}} {
		v := View{W: 64, H: 20, Spacing: [2]float64{0.5, 2.5}, O: o, ViewW: 400, ViewH: 300}
		v.Fit()
		v.ZoomAt(150, 100, 1.7)
		v.PanX += 13
		for _, p := range [][2]float64{{0.5, 0.5}, {63.5, 19.5}, {10.25, 7.75}} {
			x, y := v.SliceToScreen(p[0], p[1])
			u, w, ok := v.ScreenToSlice(x, y)
			if !ok || math.Abs(u-p[0]) > 1e-9 || math.Abs(w-p[1]) > 1e-9 {
				t.Errorf("%+v: %v -> (%v,%v) -> (%v,%v,%v)", o, p, x, y, u, w, ok)
			}
		}
		if _, _, ok := v.ScreenToSlice(-1e4, -1e4); ok {
			t.Error("outside point mapped inside")
		}
	}
}

func TestFitKeepsPhysicalAspect(t *testing.T) {
	// 64 x 20 pixels of 0.5 x 2.5 mm is 32 x 50 mm: taller than wide on screen.
	v := View{W: 64, H: 20, Spacing: [2]float64{0.5, 2.5}, ViewW: 500, ViewH: 500}
	v.Fit()
	x0, y0 := v.SliceToScreen(0, 0)
	x1, y1 := v.SliceToScreen(64, 20)
	w, h := x1-x0, y1-y0
	if math.Abs(h-500) > 1e-6 || math.Abs(w/h-32.0/50) > 1e-9 {
		t.Errorf("fit size %v x %v", w, h)
	}
	v.OneToOne()
	x1, _ = v.SliceToScreen(64, 0)
	x0, _ = v.SliceToScreen(0, 0)
	if math.Abs((x1-x0)-64) > 1e-9 {
		t.Errorf("1:1 width %v", x1-x0)
	}
}

func TestSliceRenderWindowAndOverlay(t *testing.T) {
	s := &volume.Slice{W: 4, H: 2, Channels: 1, Data: []float32{-1000, -160, 40, 240, 1000, 40, 40, 40}}
	ly := &Layers{Labels: []uint16{0, 0, 1, 0, 0, 0, 2, 3}, Styles: []Style{{}, {Color: [3]uint8{255, 0, 0}, Alpha: 255}, {Color: [3]uint8{0, 0, 255}, Alpha: 0}}}
	img := Slice(nil, s, [2]float64{40, 400}, ly)
	grey := func(i int) uint8 { return img.Pix[4*i] }
	if grey(0) != 0 || grey(1) != 0 || grey(3) != 255 || grey(4) != 255 {
		t.Errorf("window ramp %v", img.Pix)
	}
	if p := img.Pix[8:12]; p[0] != 255 || p[1] != 0 || p[2] != 0 {
		t.Errorf("label 1 not red: %v", p)
	}
	if p := img.Pix[24:28]; p[0] != p[2] || p[0] != 128 {
		t.Errorf("hidden label 2 drawn: %v", p)
	}
	if p := img.Pix[28:32]; p[0] != 128 {
		t.Errorf("label 3 without style drawn: %v", p)
	}
	rgb := &volume.Slice{W: 1, H: 1, Channels: 3, Data: []float32{10, 200, 300}}
	img = Slice(nil, rgb, [2]float64{0, 1}, nil)
	if p := img.Pix[:4]; p[0] != 10 || p[1] != 200 || p[2] != 255 {
		t.Errorf("colour %v", p)
	}
}

func TestComposeFlip(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 2, 1))
	src.Pix = []uint8{255, 0, 0, 255, 0, 255, 0, 255} // red at u=0, green at u=1
	v := View{W: 2, H: 1, Spacing: [2]float64{1, 1}, O: Orientation{FlipX: true}, ViewW: 20, ViewH: 10}
	v.Fit()
	dst := image.NewRGBA(image.Rect(0, 0, 20, 10))
	Compose(dst, src, &v, color.RGBA{})
	if c := dst.RGBAAt(2, 5); c.G != 255 {
		t.Errorf("flipped: left pixel %v, want green", c)
	}
	if c := dst.RGBAAt(17, 5); c.R != 255 {
		t.Errorf("flipped: right pixel %v, want red", c)
	}
}

func benchSlice() (*volume.Slice, *Layers) {
	const n = 512
	s := &volume.Slice{W: n, H: n, Channels: 1, Data: make([]float32, n*n)}
	ly := &Layers{Labels: make([]uint16, n*n), Preview: make([]uint8, n*n), PreviewColor: [3]uint8{255, 255, 0},
		Styles: []Style{{}, {Color: [3]uint8{255, 0, 0}, Alpha: 128, Outline: true}, {Color: [3]uint8{0, 255, 0}, Alpha: 128}}}
	for i := range s.Data {
		u, v := i%n, i/n
		s.Data[i] = float32((u*7+v*3)%2000 - 1000)
		if math.Hypot(float64(u-200), float64(v-200)) < 80 {
			ly.Labels[i] = 1
		}
		if math.Hypot(float64(u-300), float64(v-300)) < 60 {
			ly.Labels[i] = 2
		}
		if math.Hypot(float64(u-260), float64(v-240)) < 70 {
			ly.Preview[i] = 1
		}
	}
	return s, ly
}

// BenchmarkRenderSlice512 is the budget path: window + label overlay + preview of a 512² slice (≤ 8 ms).
func BenchmarkRenderSlice512(b *testing.B) {
	s, ly := benchSlice()
	var dst *image.RGBA
	for i := 0; i < b.N; i++ {
		dst = Slice(dst, s, [2]float64{40, 400}, ly)
	}
}

// BenchmarkRenderAndCompose800 adds sampling onto an 800x800 screen image.
func BenchmarkRenderAndCompose800(b *testing.B) {
	s, ly := benchSlice()
	var img *image.RGBA
	scr := image.NewRGBA(image.Rect(0, 0, 800, 800))
	v := View{W: 512, H: 512, Spacing: [2]float64{0.7, 0.7}, O: Orientation{FlipX: true}, ViewW: 800, ViewH: 800}
	v.Fit()
	for i := 0; i < b.N; i++ {
		img = Slice(img, s, [2]float64{40, 400}, ly)
		Compose(scr, img, &v, color.RGBA{A: 255})
	}
}
