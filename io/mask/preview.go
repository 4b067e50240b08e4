package mask

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"math"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/volume"
)

// PreviewAlpha is the opacity of label colours over the image in a preview.
const PreviewAlpha = 0.5

// screen directions in RAS+ for each plane: which world direction points right
// and which points down, radiological convention (patient left on screen right;
// sagittal: anterior on the left; coronal and sagittal: superior up).
var screenDirs = map[volume.Plane][2][3]float64{
	volume.Axial:    {{-1, 0, 0}, {0, -1, 0}},
	volume.Coronal:  {{-1, 0, 0}, {0, 0, -1}},
	volume.Sagittal: {{0, -1, 0}, {0, 0, -1}},
}

// displayFrame maps screen pixels of a slice to its (u, v) pixels: whether u runs
// vertically (transpose) and whether each screen axis is flipped.
type displayFrame struct {
	transpose    bool
	flipX, flipY bool
	w, h         int // screen size
}

func frameFor(a volume.Affine, s *volume.Slice, is2D bool) displayFrame {
	dirs := screenDirs[s.Plane]
	if is2D {
		dirs = screenDirs[volume.Axial] // a 2D image: every plane is the image itself
	}
	dot := func(axis int, d [3]float64) float64 {
		return a[0][axis]*d[0] + a[1][axis]*d[1] + a[2][axis]*d[2]
	}
	f := displayFrame{w: s.W, h: s.H}
	hor, ver := s.UAxis, s.VAxis
	if math.Abs(dot(s.VAxis, dirs[0])) > math.Abs(dot(s.UAxis, dirs[0])) {
		f.transpose, f.w, f.h = true, s.H, s.W
		hor, ver = s.VAxis, s.UAxis
	}
	f.flipX = dot(hor, dirs[0]) < 0
	f.flipY = dot(ver, dirs[1]) < 0
	return f
}

// src returns the slice pixel shown at screen (x, y).
func (f displayFrame) src(x, y int) (u, v int) {
	if f.flipX {
		x = f.w - 1 - x
	}
	if f.flipY {
		y = f.h - 1 - y
	}
	if f.transpose {
		return y, x
	}
	return x, y
}

// Preview renders slice index of plane p of v, windowed with v.Window, with the
// labels of m blended in their colours, oriented for display (radiological).
func Preview(v *volume.Volume, m *volume.LabelMap, p volume.Plane, index int, labels []volume.Label) (*image.NRGBA, error) {
	if m != nil {
		if d := GridDiff(v.Size, v.Affine, m.Size, m.Affine, GridTolMM); len(d) > 0 {
			return nil, fmt.Errorf("preview: the mask does not match the image grid: %v", d)
		}
	}
	s, err := v.Slice(p, index)
	if err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	var lab []uint16
	if m != nil {
		lab = m.SliceLabels(s.Axis, s.Index)
		if labels == nil {
			labels = DefaultLabels(m)
		}
	}
	colours := map[uint16][3]uint8{}
	for _, l := range labels {
		colours[l.Value] = l.Color
	}
	f := frameFor(v.Affine, s, v.Is2D())
	img := image.NewNRGBA(image.Rect(0, 0, f.w, f.h))
	lo := v.Window[0] - v.Window[1]/2
	scale := 255 / math.Max(v.Window[1], 1e-12)
	grey := func(x float32) float64 {
		return math.Max(0, math.Min(255, (float64(x)-lo)*scale))
	}
	C := s.Channels
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			u, vv := f.src(x, y)
			n := u + s.W*vv
			var rgb [3]float64
			for c := 0; c < 3; c++ {
				rgb[c] = grey(s.Data[n*C+min(c, C-1)])
			}
			if lab != nil && lab[n] != 0 {
				col, ok := colours[lab[n]]
				if !ok {
					col = DefaultColor(lab[n])
				}
				for c := 0; c < 3; c++ {
					rgb[c] = (1-PreviewAlpha)*rgb[c] + PreviewAlpha*float64(col[c])
				}
			}
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] =
				uint8(rgb[0]+0.5), uint8(rgb[1]+0.5), uint8(rgb[2]+0.5), 255
		}
	}
	return img, nil
}

// SavePreviewPNG writes Preview as a PNG, atomically. m may be nil (image only).
func SavePreviewPNG(path string, v *volume.Volume, m *volume.LabelMap, p volume.Plane, index int, labels []volume.Label) error {
	img, err := Preview(v, m, p, index, labels)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}
