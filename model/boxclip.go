package model

import "math"

// boxClipRect is the pixel rectangle a box prompt's masks are clipped to
// (manifest key "box_clip"): the pixels the box covers, u from floor(min U)
// to floor(max U) inclusive (likewise v), widened to take in the positive
// clicks, since a click outside the box asks for more than the box. The
// rectangle is clamped to the w x h slice. evaluate.py box_clip_rect mirrors
// it; testdata/autozoom/cases.json holds its answers.
func boxClipRect(p Prompt, w, h int) cropRect {
	b := p.Box
	u0, u1 := math.Min(b.U0, b.U1), math.Max(b.U0, b.U1)
	v0, v1 := math.Min(b.V0, b.V1), math.Max(b.V0, b.V1)
	for _, pt := range p.Points {
		if pt.Positive {
			u0, u1 = math.Min(u0, pt.U), math.Max(u1, pt.U)
			v0, v1 = math.Min(v0, pt.V), math.Max(v1, pt.V)
		}
	}
	return cropRect{
		X0: min(max(int(math.Floor(u0)), 0), w), Y0: min(max(int(math.Floor(v0)), 0), h),
		X1: min(max(int(math.Floor(u1))+1, 0), w), Y1: min(max(int(math.Floor(v1))+1, 0), h),
	}
}

// clipToRect zeroes every candidate mask outside c and recounts the areas.
// The low-res logits are left as the decoder gave them: they are what the
// next call feeds back, and the clip is applied again to its answer.
func clipToRect(res *Result, c cropRect) {
	for k, m := range res.Masks {
		n := 0
		for v := 0; v < res.H; v++ {
			row := m[v*res.W : (v+1)*res.W]
			for u := range row {
				if row[u] == 0 {
					continue
				}
				if u < c.X0 || u >= c.X1 || v < c.Y0 || v >= c.Y1 {
					row[u] = 0
				} else {
					n++
				}
			}
		}
		res.Areas[k] = n
	}
}
