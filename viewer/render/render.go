package render

import (
	"image"
	"image/color"
	"math"

	"github.com/medsa/medsa/io/volume"
)

// Style is how one label value is drawn.
type Style struct {
	Color   [3]uint8
	Alpha   uint8 // 0 = hidden
	Outline bool
}

// Layers are what is blended over the windowed image, all in the slice frame.
type Layers struct {
	Labels       []uint16 // W*H label values, or nil
	Styles       []Style  // indexed by label value; values past the end are hidden
	Preview      []uint8  // W*H candidate mask (1 = inside), or nil
	PreviewColor [3]uint8
}

// WindowLUT maps intensities to grey through a window (center, width), as a
// linear ramp: grey = clamp((x - (c - w/2)) / w) * 255. Precomputed per window.
type WindowLUT struct {
	lo, scale float32
}

// NewWindowLUT prepares window (c, w); a non-positive width becomes 1.
func NewWindowLUT(c, w float64) WindowLUT {
	if w <= 0 {
		w = 1
	}
	return WindowLUT{lo: float32(c - w/2), scale: float32(255 / w)}
}

// Grey maps one intensity.
func (l WindowLUT) Grey(x float32) uint8 {
	g := (x - l.lo) * l.scale
	if !(g > 0) { // also NaN
		return 0
	}
	if g >= 255 {
		return 255
	}
	return uint8(g + 0.5)
}

// Slice renders slice s windowed by w (ignored for colour) with layers blended
// into dst, which must be s.W x s.H (it is reallocated otherwise). This is the
// per-frame pixel path; it allocates nothing when dst fits.
func Slice(dst *image.RGBA, s *volume.Slice, window [2]float64, ly *Layers) *image.RGBA {
	if dst == nil || dst.Rect.Dx() != s.W || dst.Rect.Dy() != s.H {
		dst = image.NewRGBA(image.Rect(0, 0, s.W, s.H))
	}
	n := s.W * s.H
	pix := dst.Pix
	if s.Channels == 3 {
		for i := 0; i < n; i++ {
			pix[4*i] = clamp8(s.Data[3*i])
			pix[4*i+1] = clamp8(s.Data[3*i+1])
			pix[4*i+2] = clamp8(s.Data[3*i+2])
			pix[4*i+3] = 255
		}
	} else {
		lut := NewWindowLUT(window[0], window[1])
		for i, x := range s.Data[:n] {
			g := lut.Grey(x)
			p := pix[4*i : 4*i+4 : 4*i+4]
			p[0], p[1], p[2], p[3] = g, g, g, 255
		}
	}
	if ly != nil {
		blend(pix, s.W, s.H, ly)
	}
	return dst
}

func clamp8(x float32) uint8 {
	if !(x > 0) {
		return 0
	}
	if x >= 255 {
		return 255
	}
	return uint8(x + 0.5)
}

func blend(pix []uint8, w, h int, ly *Layers) {
	if ly.Labels != nil {
		st := ly.Styles
		for i, l := range ly.Labels[:w*h] {
			if l == 0 || int(l) >= len(st) {
				continue
			}
			s := st[l]
			if s.Alpha == 0 {
				continue
			}
			a := uint16(s.Alpha)
			// Edges of a label are drawn opaque so thin structures stay visible.
			if s.Outline {
				u, v := i%w, i/w
				if (u > 0 && ly.Labels[i-1] != l) || (u < w-1 && ly.Labels[i+1] != l) ||
					(v > 0 && ly.Labels[i-w] != l) || (v < h-1 && ly.Labels[i+w] != l) {
					a = 255
				}
			}
			p := pix[4*i : 4*i+3 : 4*i+3]
			p[0] = uint8((uint16(p[0])*(255-a) + uint16(s.Color[0])*a) / 255)
			p[1] = uint8((uint16(p[1])*(255-a) + uint16(s.Color[1])*a) / 255)
			p[2] = uint8((uint16(p[2])*(255-a) + uint16(s.Color[2])*a) / 255)
		}
	}
	if ly.Preview != nil {
		m := ly.Preview
		c := ly.PreviewColor
		for i, x := range m[:w*h] {
			if x == 0 {
				continue
			}
			u, v := i%w, i/w
			edge := u == 0 || u == w-1 || v == 0 || v == h-1 || m[i-1] == 0 || m[i+1] == 0 || m[i-w] == 0 || m[i+w] == 0
			p := pix[4*i : 4*i+3 : 4*i+3]
			if edge {
				p[0], p[1], p[2] = c[0], c[1], c[2]
				continue
			}
			const a = 90
			p[0] = uint8((uint16(p[0])*(255-a) + uint16(c[0])*a) / 255)
			p[1] = uint8((uint16(p[1])*(255-a) + uint16(c[1])*a) / 255)
			p[2] = uint8((uint16(p[2])*(255-a) + uint16(c[2])*a) / 255)
		}
	}
}

// Compose samples the slice image src (slice frame) onto the screen image dst
// through view v (nearest neighbour), filling outside with bg. Per-column and
// per-row source offsets are computed once, so the inner loop is a copy.
func Compose(dst, src *image.RGBA, v *View, bg color.RGBA) {
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	xoff := make([]int32, dw)
	yoff := make([]int32, dh)
	sw := src.Rect.Dx()
	for x := 0; x < dw; x++ {
		u, w, _ := v.ScreenToSlice(float64(x)+0.5, v.centreY())
		xoff[x] = axisOffset(u, w, v, true, sw)
	}
	for y := 0; y < dh; y++ {
		u, w, _ := v.ScreenToSlice(v.centreX(), float64(y)+0.5)
		yoff[y] = axisOffset(u, w, v, false, sw)
	}
	sp := src.Pix
	bgc := [4]uint8{bg.R, bg.G, bg.B, bg.A}
	for y := 0; y < dh; y++ {
		row := dst.Pix[y*dst.Stride : y*dst.Stride+4*dw]
		yo := yoff[y]
		for x := 0; x < dw; x++ {
			d := row[4*x : 4*x+4 : 4*x+4]
			xo := xoff[x]
			if yo < 0 || xo < 0 {
				d[0], d[1], d[2], d[3] = bgc[0], bgc[1], bgc[2], bgc[3]
				continue
			}
			o := 4 * (xo + yo)
			s := sp[o : o+4 : o+4]
			d[0], d[1], d[2], d[3] = s[0], s[1], s[2], s[3]
		}
	}
}

// centreX/Y are a screen coordinate inside the image along the other axis,
// so ScreenToSlice of one axis is not clipped by the other.
func (v *View) centreX() float64 { ox, _ := v.origin(); ex, _ := v.Extent(); return ox + ex*v.Zoom/2 }
func (v *View) centreY() float64 { _, oy := v.origin(); _, ey := v.Extent(); return oy + ey*v.Zoom/2 }

// axisOffset is the pixel offset contributed by a screen column (horizontal)
// or row, or -1 outside the slice.
func axisOffset(u, w float64, v *View, horizontal bool, stride int) int32 {
	// Which slice axis does this screen axis drive?
	drivesU := horizontal != v.O.Transposed
	if drivesU {
		iu := int(math.Floor(u))
		if iu < 0 || iu >= v.W {
			return -1
		}
		return int32(iu)
	}
	iv := int(math.Floor(w))
	if iv < 0 || iv >= v.H {
		return -1
	}
	return int32(iv * stride)
}

// --- glyphs, drawn on the screen image ---

// FillRect fills an axis-aligned screen rectangle, clipped.
func FillRect(dst *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			o := dst.PixOffset(x, y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = c.R, c.G, c.B, c.A
		}
	}
}

// StrokeRect draws a rectangle outline of thickness t.
func StrokeRect(dst *image.RGBA, x0, y0, x1, y1, t int, c color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	FillRect(dst, x0, y0, x1+1, y0+t, c)
	FillRect(dst, x0, y1-t+1, x1+1, y1+1, c)
	FillRect(dst, x0, y0, x0+t, y1+1, c)
	FillRect(dst, x1-t+1, y0, x1+1, y1+1, c)
}

// Circle draws a circle outline of radius r (screen pixels).
func Circle(dst *image.RGBA, cx, cy, r float64, c color.RGBA) {
	steps := int(2*math.Pi*r) + 8
	for i := 0; i < steps; i++ {
		a := 2 * math.Pi * float64(i) / float64(steps)
		x, y := int(cx+r*math.Cos(a)), int(cy+r*math.Sin(a))
		if image.Pt(x, y).In(dst.Rect) {
			o := dst.PixOffset(x, y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = c.R, c.G, c.B, c.A
		}
	}
}

// Marker draws a prompt point: a filled disc with a white rim and a plus
// (positive, green) or minus (negative, red).
func Marker(dst *image.RGBA, x, y float64, positive bool) {
	fill := color.RGBA{40, 200, 60, 255}
	if !positive {
		fill = color.RGBA{230, 40, 40, 255}
	}
	const r = 6.0
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			d := math.Hypot(dx, dy)
			px, py := int(x+dx), int(y+dy)
			if d > r || !image.Pt(px, py).In(dst.Rect) {
				continue
			}
			c := fill
			if d > r-1.5 {
				c = color.RGBA{255, 255, 255, 255}
			}
			o := dst.PixOffset(px, py)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = c.R, c.G, c.B, c.A
		}
	}
	w := color.RGBA{255, 255, 255, 255}
	xi, yi := int(x), int(y)
	FillRect(dst, xi-3, yi, xi+4, yi+1, w)
	if positive {
		FillRect(dst, xi, yi-3, xi+1, yi+4, w)
	}
}
