package model

import (
	"context"
	"math"

	"github.com/medsa/medsa/io/volume"
)

// AutoZoom is a model's zoom policy (manifest key "auto_zoom"; absent: never
// zoom). A small structure covers few cells of the model's canvas; encoding a
// crop around it gives the model more pixels (nnInteractive's AutoZoom,
// FocalClick's focus crop). evaluate.py mirrors this policy exactly
// (crop_rect, remap_low); testdata/autozoom/cases.json holds its answers and
// TestAutoZoomParity checks that Go gives the same.
type AutoZoom struct {
	// BoxMargin: with a box, the crop is a square of side BoxMargin × the box's
	// larger side (at least MinSide) around the box centre.
	BoxMargin float64 `json:"box_margin"`
	// MinSide is the smallest crop side, slice pixels.
	MinSide int `json:"min_side"`
	// ClickBelow: clicks only, the full view is decoded first; when the chosen
	// mask covers less than this fraction of the slice, the engine zooms onto
	// it (ClickMargin × its bounding box, with the clicks) and decodes again.
	// 0 turns click zoom off.
	ClickBelow  float64 `json:"click_below"`
	ClickMargin float64 `json:"click_margin"`
	// ClickMinPoints: click zoom is tried only once the prompt holds this many
	// points (0 or 1: from the first click). On 2.1.0, zooming the first click
	// lost 1-click Dice on MR while zooming corrective clicks gained
	// (model/train/REPORT.md, "stop 25").
	ClickMinPoints int `json:"click_min_points,omitempty"`
	// ClickAgree: a zoomed answer to clicks is kept only when its chosen mask
	// has a Dice of at least ClickAgree with the full view's chosen mask (0:
	// always kept). A crop cut around a wrong full-view mask loses the context
	// that would correct it; the full view's answer is then the safer one.
	ClickAgree float64 `json:"click_agree,omitempty"`
	// MaxFrac: no zoom when the crop side would reach this fraction of the
	// slice's larger side (nothing to gain).
	MaxFrac float64 `json:"max_frac"`
}

// keepZoomed says whether the zoomed chosen mask b replaces the full view's
// chosen mask a under z.ClickAgree (evaluate.py: keep_zoomed).
func keepZoomed(a, b []uint8, z AutoZoom) bool {
	if z.ClickAgree <= 0 {
		return true
	}
	var inter, na, nb int
	for i := range a {
		x, y := a[i] != 0, b[i] != 0
		if x {
			na++
		}
		if y {
			nb++
		}
		if x && y {
			inter++
		}
	}
	return 2*float64(inter) >= z.ClickAgree*float64(max(1, na+nb))
}

// cropRect is a crop of a slice: pixels X0 <= u < X1, Y0 <= v < Y1. The zero
// value is "no crop".
type cropRect struct{ X0, Y0, X1, Y1 int }

func (c cropRect) empty() bool { return c.X1 <= c.X0 || c.Y1 <= c.Y0 }

// zoomCrop is the square crop of side margin × max(bbox side), at least
// minSide, rounded up to a multiple of 16 px, centred on the bbox u0..u1,
// v0..v1 (inclusive pixel bounds) with its corner on a multiple of 8 px, and
// shifted to lie inside the W x H slice; ok is false when the crop would not be
// smaller than maxFrac of the slice. The rounding lets nearby prompts (a
// corrective click that moves the mask a little) share a cached crop.
func zoomCrop(u0, v0, u1, v1 float64, z AutoZoom, margin float64, W, H int) (cropRect, bool) {
	side := math.Max(u1-u0+1, v1-v0+1) * margin
	side = math.Ceil(math.Max(side, float64(z.MinSide))/16) * 16
	if side >= z.MaxFrac*float64(max(W, H)) {
		return cropRect{}, false
	}
	s := int(side)
	axis := func(c float64, n int) (int, int) {
		if s >= n {
			return 0, n
		}
		a := int(math.Floor((c-side/2)/8+0.5)) * 8
		a = min(max(a, 0), n-s)
		return a, a + s
	}
	var r cropRect
	r.X0, r.X1 = axis((u0+u1)/2, W)
	r.Y0, r.Y1 = axis((v0+v1)/2, H)
	return r, true
}

// cropSlice copies the crop of s.
func cropSlice(s *volume.Slice, c cropRect) *volume.Slice {
	w, h, nc := c.X1-c.X0, c.Y1-c.Y0, s.Channels
	out := *s
	out.W, out.H = w, h
	out.Data = make([]float32, w*h*nc)
	for v := 0; v < h; v++ {
		src := s.Data[((c.Y0+v)*s.W+c.X0)*nc:]
		copy(out.Data[v*w*nc:(v+1)*w*nc], src[:w*nc])
	}
	return &out
}

// remapLow resamples low-res logits from the frame of geometry gs (a slice
// whose pixel (0,0) lies at (ou, ov) of the destination slice) into the frame
// of gd: each destination cell takes the bilinear value at its centre, or fill
// where that centre falls outside the source's resized area. This is how a
// zoomed answer's logits are handed back in the full view (and a full-view
// mask input is handed to a zoomed decode), so MaskIn and LowRes always mean
// the full slice.
func remapLow(src []float32, gs Geometry, ou, ov float64, gd Geometry, fill float32) []float32 {
	L := gd.L
	out := make([]float32, L*L)
	Ls := gs.L
	cw, ch := gs.CropW(), gs.CropH()
	// destination cell centre -> destination slice pixel -> source slice pixel -> source cell index
	fx := func(i int, g Geometry, n, n2 int, o float64) float64 {
		x := (float64(i) + 0.5) * float64(g.S) / float64(g.L) // canvas
		u := x*float64(n)/float64(n2) - o                     // source slice pixel
		return u
	}
	toCell := func(u float64, n, n2 int) float64 {
		return u*float64(n2)/float64(n)*float64(Ls)/float64(gs.S) - 0.5
	}
	for j := 0; j < L; j++ {
		v := fx(j, gd, gd.H, gd.H2, ov)
		fy := toCell(v, gs.H, gs.H2)
		for i := 0; i < L; i++ {
			u := fx(i, gd, gd.W, gd.W2, ou)
			fxc := toCell(u, gs.W, gs.W2)
			if u < 0 || v < 0 || u > float64(gs.W) || v > float64(gs.H) || fxc < -0.5 || fy < -0.5 ||
				fxc > float64(cw)-0.5 || fy > float64(ch)-0.5 {
				out[j*L+i] = fill
				continue
			}
			x0 := min(max(int(math.Floor(fxc)), 0), cw-1)
			y0 := min(max(int(math.Floor(fy)), 0), ch-1)
			x1, y1 := min(x0+1, cw-1), min(y0+1, ch-1)
			ax := float32(min(max(fxc-float64(x0), 0), 1))
			ay := float32(min(max(fy-float64(y0), 0), 1))
			a := src[y0*Ls+x0]*(1-ax) + src[y0*Ls+x1]*ax
			b := src[y1*Ls+x0]*(1-ax) + src[y1*Ls+x1]*ax
			out[j*L+i] = a*(1-ay) + b*ay
		}
	}
	return out
}

// zoomFill is the logit given to cells outside a zoomed crop: background.
const zoomFill = -20

// segmentZoomed decodes p on crop c of r's slice (encoding the crop if it is
// not cached) and returns the answer in the full slice's frame: masks pasted
// at their place, logits remapped, Result.Zoom set.
func (e *Engine) segmentZoomed(ctx context.Context, r SliceRef, c cropRect, p Prompt, gFull Geometry) (*Result, error) {
	rc := r
	rc.crop = c
	emb, g, ok := e.cache.get(e.key(rc, false))
	var encMS float64
	if !ok {
		var err error
		t0 := nowMS()
		if emb, g, err = e.embedding(ctx, rc); err != nil {
			return nil, err
		}
		encMS = nowMS() - t0
	}
	w, h := c.X1-c.X0, c.Y1-c.Y0
	clampU := func(u float64) float64 { return min(max(u-float64(c.X0), 0), float64(w-1)) }
	clampV := func(v float64) float64 { return min(max(v-float64(c.Y0), 0), float64(h-1)) }
	q := Prompt{}
	for _, pt := range p.Points {
		q.Points = append(q.Points, Point{U: clampU(pt.U), V: clampV(pt.V), Positive: pt.Positive})
	}
	if b := p.Box; b != nil {
		q.Box = &Box{U0: clampU(b.U0), V0: clampV(b.V0), U1: clampU(b.U1), V1: clampV(b.V1)}
	}
	if p.MaskIn != nil {
		q.MaskIn = remapLow(p.MaskIn, gFull, -float64(c.X0), -float64(c.Y0), g, zoomFill)
	}
	res, err := e.decode(ctx, emb, g, q)
	if err != nil {
		return nil, err
	}
	out := &Result{W: gFull.W, H: gFull.H, Scores: res.Scores, Best: res.Best, Areas: res.Areas,
		EncodeMS: encMS, DecodeMS: res.DecodeMS, PostMS: res.PostMS, Zoom: &[4]int{c.X0, c.Y0, c.X1, c.Y1}}
	for k, m := range res.Masks {
		full := make([]uint8, gFull.W*gFull.H)
		for v := 0; v < h; v++ {
			copy(full[(c.Y0+v)*gFull.W+c.X0:(c.Y0+v)*gFull.W+c.X1], m[v*w:(v+1)*w])
		}
		out.Masks = append(out.Masks, full)
		out.LowRes = append(out.LowRes, remapLow(res.LowRes[k], g, float64(c.X0), float64(c.Y0), gFull, zoomFill))
	}
	return out, nil
}

// bboxOf is the inclusive bounding box of mask m (W wide) and the points.
func bboxOf(m []uint8, W int, pts []Point) (u0, v0, u1, v1 float64, ok bool) {
	u0, v0, u1, v1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for i, x := range m {
		if x != 0 {
			u, v := float64(i%W), float64(i/W)
			u0, v0, u1, v1 = math.Min(u0, u), math.Min(v0, v), math.Max(u1, u), math.Max(v1, v)
		}
	}
	if math.IsInf(u0, 1) {
		return 0, 0, 0, 0, false
	}
	for _, p := range pts {
		if p.Positive {
			u0, v0 = math.Min(u0, math.Floor(p.U)), math.Min(v0, math.Floor(p.V))
			u1, v1 = math.Max(u1, math.Floor(p.U)), math.Max(v1, math.Floor(p.V))
		}
	}
	return u0, v0, u1, v1, true
}
