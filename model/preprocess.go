package model

import (
	"fmt"
	"math"

	"github.com/medsa/medsa/io/volume"
)

// Geometry is how a W x H slice maps onto the model's S x S canvas: resized to
// W2 x H2 at the top-left (docs/MANIFEST.md, step 2).
type Geometry struct {
	W, H   int // slice pixels
	W2, H2 int // resized extent on the canvas
	S      int // canvas size
	L      int // low-res mask size
}

// Geometry computes the resize of a W x H slice with pixel spacing (mm along u, v).
func (m *Manifest) Geometry(w, h int, spacing [2]float64) Geometry {
	g := Geometry{W: w, H: h, S: m.InputSize, L: m.LowResMaskSize}
	if m.Resize == "stretch" {
		g.W2, g.H2 = g.S, g.S
		return g
	}
	eu, ev := float64(w), float64(h)
	if m.PixelAspect == "physical" && spacing[0] > 0 && spacing[1] > 0 {
		eu, ev = float64(w)*spacing[0], float64(h)*spacing[1]
	}
	scale := float64(g.S) / math.Max(eu, ev)
	g.W2 = max(1, int(math.Floor(eu*scale+0.5)))
	g.H2 = max(1, int(math.Floor(ev*scale+0.5)))
	g.W2, g.H2 = min(g.W2, g.S), min(g.H2, g.S)
	return g
}

// ToModel maps slice pixel coordinates to model-input pixels (SAM's transform).
func (g Geometry) ToModel(u, v float64) (x, y float32) {
	return float32(u * float64(g.W2) / float64(g.W)), float32(v * float64(g.H2) / float64(g.H))
}

// CropW and CropH are the low-res region that covers the resized slice.
func (g Geometry) CropW() int {
	return min(g.L, int(math.Ceil(float64(g.W2)*float64(g.L)/float64(g.S))))
}
func (g Geometry) CropH() int {
	return min(g.L, int(math.Ceil(float64(g.H2)*float64(g.L)/float64(g.S))))
}

// Window returns the (center, width) the model sees for a grey volume when the
// caller gives none: the volume's own default window for CT (or the manifest's
// CT default), else the manifest's percentiles of the volume.
func (m *Manifest) DefaultWindow(v *volume.Volume) [2]float64 {
	if v.Channels != 1 {
		return [2]float64{}
	}
	if v.Modality == "CT" {
		if v.Window[1] > 0 {
			return v.Window
		}
		if m.Windowing.CTDefaultWindow[1] > 0 {
			return m.Windowing.CTDefaultWindow
		}
		return [2]float64{40, 400}
	}
	if v.Window[1] > 0 {
		return v.Window
	}
	p := m.Windowing.Percentiles
	if p[1] <= p[0] {
		p = [2]float64{0.5, 99.5}
	}
	return volume.PercentileWindow(v.Data, v.Channels, p[0], p[1])
}

// Preprocess turns a slice into the encoder input [3,S,S] (written into dst,
// len 3*S*S) per docs/MANIFEST.md: window (grey) or scale (RGB), bilinear
// half-pixel resize to W2 x H2, normalise, pad with zeros. float32 throughout,
// in the same operation order as the PyTorch reference.
func (m *Manifest) Preprocess(s *volume.Slice, window [2]float64, dst []float32) (Geometry, error) {
	g := m.Geometry(s.W, s.H, s.Spacing)
	S := g.S
	if len(dst) != 3*S*S {
		return g, fmt.Errorf("preprocess: dst has %d floats, want %d", len(dst), 3*S*S)
	}
	if s.W <= 0 || s.H <= 0 || len(s.Data) != s.W*s.H*s.Channels {
		return g, fmt.Errorf("preprocess: slice %dx%dx%d with %d values", s.W, s.H, s.Channels, len(s.Data))
	}
	// Steps 1 and 3: values in [0,1] (window or RGB scale), resized per
	// channel. The pointwise step 1 runs only on the source rows the resize
	// reads (2 per output row: a 1411² photo touches ~500 of its rows), with
	// the same float32 operations as on the whole image.
	nc := s.Channels
	var f func(x float32) float32
	switch s.Channels {
	case 1:
		if window[1] <= 0 {
			return g, fmt.Errorf("preprocess: window width %g, want > 0", window[1])
		}
		c, w := float32(window[0]), float32(window[1])
		lo := c - w/2
		f = func(x float32) float32 {
			y := (x - lo) / w
			if y < 0 || y != y { // NaN counts as below the window
				return 0
			} else if y > 1 {
				return 1
			}
			return y
		}
	case 3:
		sc := float32(m.RGBScale)
		f = func(x float32) float32 { return x / sc }
	default:
		return g, fmt.Errorf("preprocess: %d channels, want 1 or 3", s.Channels)
	}
	rs := make([][]float32, nc)
	xi := newAxisWeights(s.W, g.W2)
	yi := newAxisWeights(s.H, g.H2)
	scratch := make([]float32, s.W)
	for c := 0; c < nc; c++ {
		rs[c] = make([]float32, g.W2*g.H2)
		out := rs[c]
		row := func(r int) []float32 {
			src := s.Data[r*s.W*nc : (r+1)*s.W*nc]
			for u := range scratch {
				scratch[u] = f(src[u*nc+c])
			}
			return scratch
		}
		resizeRows(row, g.W2, xi, yi, func(y int, t0, t1 []float32, h0, h1 float32) {
			o := out[y*g.W2 : (y+1)*g.W2]
			for x := range o {
				o[x] = t0[x]*h0 + t1[x]*h1
			}
		})
	}
	// Step 4: normalise into the zero canvas.
	clear(dst)
	for c := 0; c < 3; c++ {
		src := rs[min(c, nc-1)]
		mean, std := m.Mean[c], m.Std[c]
		out := dst[c*S*S:]
		for y := 0; y < g.H2; y++ {
			row := src[y*g.W2 : (y+1)*g.W2]
			o := out[y*S : y*S+g.W2]
			for x, v := range row {
				o[x] = (v - mean) / std
			}
		}
	}
	return g, nil
}

// axisWeights are the precomputed source indices and weights of a bilinear
// half-pixel resize along one axis (torch align_corners=False, no antialias).
type axisWeights struct {
	i0, i1 []int
	w0, w1 []float32
}

func newAxisWeights(in, out int) axisWeights {
	a := axisWeights{i0: make([]int, out), i1: make([]int, out), w0: make([]float32, out), w1: make([]float32, out)}
	scale := float32(in) / float32(out)
	for d := 0; d < out; d++ {
		src := scale*(float32(d)+0.5) - 0.5
		if src < 0 {
			src = 0
		}
		i := min(int(src), in-1) // src >= 0: truncation is floor
		l := src - float32(i)
		l = min(max(l, 0), 1)
		a.i0[d] = i
		a.i1[d] = i
		if i < in-1 {
			a.i1[d] = i + 1
		}
		a.w0[d], a.w1[d] = 1-l, l
	}
	return a
}

// resizeBilinear resizes src (rows of srcW) into dst (rows of len(xw.i0)).
// Separable, horizontal first: each source row a destination row touches is
// interpolated along x once, then rows are blended along y. That is the same
// float32 operations in the same order as torch's kernel
// (t0 = r0[a]*w0 + r0[b]*w1; t1 likewise; out = t0*h0 + t1*h1), so the result is
// bit-identical, without redoing the horizontal pass for every output row.
func resizeBilinear(src []float32, srcW int, dst []float32, dstW int, xw, yw axisWeights) {
	resizeRows(func(r int) []float32 { return src[r*srcW : (r+1)*srcW] }, dstW, xw, yw, func(y int, t0, t1 []float32, h0, h1 float32) {
		o := dst[y*dstW : (y+1)*dstW]
		for x := range o {
			o[x] = t0[x]*h0 + t1[x]*h1
		}
	})
}

// resizeRows runs the horizontal pass (cached per source row) and calls emit
// with the two interpolated rows and the vertical weights of each output row.
// srcRow returns a source row; its result is only read until the next call.
func resizeRows(srcRow func(r int) []float32, dstW int, xw, yw axisWeights, emit func(y int, t0, t1 []float32, h0, h1 float32)) {
	cache := map[int][]float32{}
	var order []int // keep at most two rows alive: output rows advance monotonically
	row := func(r int) []float32 {
		if t, ok := cache[r]; ok {
			return t
		}
		var t []float32
		if len(order) >= 3 {
			old := order[0]
			order = order[1:]
			t = cache[old]
			delete(cache, old)
		} else {
			t = make([]float32, dstW)
		}
		s := srcRow(r)
		for x := range t {
			t[x] = s[xw.i0[x]]*xw.w0[x] + s[xw.i1[x]]*xw.w1[x]
		}
		cache[r] = t
		order = append(order, r)
		return t
	}
	for y := range yw.i0 {
		t0 := row(yw.i0[y])
		t1 := row(yw.i1[y])
		emit(y, t0, t1, yw.w0[y], yw.w1[y])
	}
}

// Upsample writes the mask logits of one low-res candidate (L*L) at the slice
// size (W*H, u + W*v): crop to the resized region, bilinear half-pixel resize.
func (g Geometry) Upsample(low []float32, dst []float32) {
	cw, ch := g.CropW(), g.CropH()
	crop := make([]float32, cw*ch)
	for y := 0; y < ch; y++ {
		copy(crop[y*cw:(y+1)*cw], low[y*g.L:y*g.L+cw])
	}
	resizeBilinear(crop, cw, dst, g.W, newAxisWeights(cw, g.W), newAxisWeights(ch, g.H))
}

// maskWeights caches the axis weights of the low-res → slice resize.
type maskWeights struct {
	xw, yw axisWeights
}

func (g Geometry) maskWeights() maskWeights {
	return maskWeights{xw: newAxisWeights(g.CropW(), g.W), yw: newAxisWeights(g.CropH(), g.H)}
}

// threshold computes the binary mask (logit > thr) of one candidate directly
// from the low-res logits (rows of L), without materialising the W x H logits;
// it returns the number of pixels inside.
func (g Geometry) threshold(low []float32, thr float32, mw maskWeights, dst []uint8) int {
	n := 0
	L := g.L
	resizeRows(func(r int) []float32 { return low[r*L : (r+1)*L] }, g.W, mw.xw, mw.yw, func(y int, t0, t1 []float32, h0, h1 float32) {
		o := dst[y*g.W : (y+1)*g.W]
		for x := range o {
			if t0[x]*h0+t1[x]*h1 > thr {
				o[x] = 1
				n++
			} else {
				o[x] = 0
			}
		}
	})
	return n
}
