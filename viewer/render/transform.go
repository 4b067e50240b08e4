// Package render is the display maths and pixel path of the slice view, kept
// free of Fyne so it is unit-tested and benchmarked headless: screen <-> slice
// mapping (radiological convention, physical aspect, zoom, pan), windowing,
// label overlay blending and prompt glyphs.
package render

import (
	"math"

	"github.com/medsa/medsa/io/volume"
)

// Orientation says how a slice's (u, v) axes lie on screen.
type Orientation struct {
	Transposed   bool      // u runs vertically (v horizontally)
	FlipX, FlipY bool      // the axis on screen x (y) runs right-to-left (bottom-to-top)
	Letters      [4]string // patient direction at the screen's left, right, top, bottom edges
}

// screen directions in RAS world for each plane, radiological convention:
// patient left on screen right; anterior (axial) or superior up; sagittal
// with anterior on the left.
var screenDirs = map[volume.Plane][2][3]float64{
	volume.Axial:    {{-1, 0, 0}, {0, -1, 0}}, // right = L, down = P
	volume.Coronal:  {{-1, 0, 0}, {0, 0, -1}}, // right = L, down = I
	volume.Sagittal: {{0, -1, 0}, {0, 0, -1}}, // right = P, down = I
}

// letter names the dominant world direction of d.
func letter(d [3]float64) string {
	best, bi := -1.0, 0
	for i, x := range d {
		if math.Abs(x) > best {
			best, bi = math.Abs(x), i
		}
	}
	pos := [3]string{"R", "A", "S"}
	neg := [3]string{"L", "P", "I"}
	if d[bi] >= 0 {
		return pos[bi]
	}
	return neg[bi]
}

func col(a volume.Affine, c int) [3]float64 {
	v := [3]float64{a[0][c], a[1][c], a[2][c]}
	n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if n > 0 {
		v[0], v[1], v[2] = v[0]/n, v[1]/n, v[2]/n
	}
	return v
}

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func neg(a [3]float64) [3]float64 { return [3]float64{-a[0], -a[1], -a[2]} }

// Orient decides how slice axes (ua, va) of plane p are laid out on screen so
// the image follows the radiological convention as closely as the grid allows
// (oblique grids: the nearest axis-aligned layout; letters name the dominant
// direction). A 2D photo (RGB, nz = 1 with identity-like affine) is shown as stored.
func Orient(a volume.Affine, p volume.Plane, ua, va int, photo bool) Orientation {
	if photo {
		return Orientation{Letters: [4]string{"", "", "", ""}}
	}
	dirs := screenDirs[p]
	right, down := dirs[0], dirs[1]
	cu, cv := col(a, ua), col(a, va)
	var o Orientation
	// Put on screen x whichever slice axis is more horizontal.
	if math.Abs(dot(cu, right))+math.Abs(dot(cv, down)) < math.Abs(dot(cv, right))+math.Abs(dot(cu, down)) {
		o.Transposed = true
	}
	xdir, ydir := cu, cv
	if o.Transposed {
		xdir, ydir = cv, cu
	}
	if dot(xdir, right) < 0 {
		o.FlipX = true
		xdir = neg(xdir)
	}
	if dot(ydir, down) < 0 {
		o.FlipY = true
		ydir = neg(ydir)
	}
	o.Letters = [4]string{letter(neg(xdir)), letter(xdir), letter(neg(ydir)), letter(ydir)}
	return o
}

// View maps between screen pixels and slice pixel coordinates.
type View struct {
	W, H         int        // slice size in pixels (u, v)
	Spacing      [2]float64 // mm per pixel along u and v
	O            Orientation
	Zoom         float64 // screen pixels per mm
	PanX, PanY   float64 // offset of the image centre from the view centre, screen pixels
	ViewW, ViewH float64 // view size, screen pixels
}

// displayed grid: number of slice pixels along screen x and y and their mm size.
func (v *View) grid() (nx, ny int, sx, sy float64) {
	if v.O.Transposed {
		return v.H, v.W, v.Spacing[1], v.Spacing[0]
	}
	return v.W, v.H, v.Spacing[0], v.Spacing[1]
}

// Extent is the image size in mm along screen x and y.
func (v *View) Extent() (float64, float64) {
	nx, ny, sx, sy := v.grid()
	return float64(nx) * sx, float64(ny) * sy
}

// Fit sets the zoom so the whole slice fits the view, centred.
func (v *View) Fit() {
	ex, ey := v.Extent()
	if ex <= 0 || ey <= 0 || v.ViewW <= 0 || v.ViewH <= 0 {
		v.Zoom = 1
		return
	}
	v.Zoom = math.Min(v.ViewW/ex, v.ViewH/ey)
	v.PanX, v.PanY = 0, 0
}

// OneToOne sets one screen pixel per slice pixel along the finer axis.
func (v *View) OneToOne() {
	_, _, sx, sy := v.grid()
	v.Zoom = 1 / math.Min(sx, sy)
}

// origin is the screen position of the image's top-left corner.
func (v *View) origin() (float64, float64) {
	ex, ey := v.Extent()
	return v.ViewW/2 + v.PanX - ex*v.Zoom/2, v.ViewH/2 + v.PanY - ey*v.Zoom/2
}

// ScreenToSlice maps a screen point to continuous slice coordinates: pixel
// (u, v) covers [u, u+1) x [v, v+1). ok is false outside the slice.
func (v *View) ScreenToSlice(x, y float64) (u, w float64, ok bool) {
	ox, oy := v.origin()
	nx, ny, sx, sy := v.grid()
	gx := (x - ox) / v.Zoom / sx
	gy := (y - oy) / v.Zoom / sy
	if v.O.FlipX {
		gx = float64(nx) - gx
	}
	if v.O.FlipY {
		gy = float64(ny) - gy
	}
	ok = gx >= 0 && gy >= 0 && gx < float64(nx) && gy < float64(ny)
	if v.O.Transposed {
		return gy, gx, ok
	}
	return gx, gy, ok
}

// SliceToScreen maps continuous slice coordinates to the screen (the inverse
// of ScreenToSlice); use u+0.5, v+0.5 for a pixel's centre.
func (v *View) SliceToScreen(u, w float64) (x, y float64) {
	ox, oy := v.origin()
	nx, ny, sx, sy := v.grid()
	gx, gy := u, w
	if v.O.Transposed {
		gx, gy = w, u
	}
	if v.O.FlipX {
		gx = float64(nx) - gx
	}
	if v.O.FlipY {
		gy = float64(ny) - gy
	}
	return ox + gx*sx*v.Zoom, oy + gy*sy*v.Zoom
}

// ZoomAt multiplies the zoom by f keeping the screen point (x, y) fixed.
func (v *View) ZoomAt(x, y, f float64) {
	nz := math.Min(math.Max(v.Zoom*f, 0.01), 200)
	f = nz / v.Zoom
	cx, cy := v.ViewW/2+v.PanX, v.ViewH/2+v.PanY // image centre on screen
	v.PanX += (cx - x) * (f - 1)
	v.PanY += (cy - y) * (f - 1)
	v.Zoom = nz
}
