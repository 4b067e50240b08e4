package volume

import (
	"fmt"
	"math"
)

// Plane names a viewing plane. It is resolved to the array axis held fixed by the
// affine, so a coronally acquired volume shows its coronal plane when asked for Coronal.
type Plane int

const (
	Axial    Plane = iota // perpendicular to S
	Coronal               // perpendicular to A
	Sagittal              // perpendicular to R
)

func (p Plane) String() string {
	switch p {
	case Axial:
		return "axial"
	case Coronal:
		return "coronal"
	case Sagittal:
		return "sagittal"
	}
	return fmt.Sprintf("plane(%d)", int(p))
}

// ParsePlane reads "axial", "coronal" or "sagittal".
func ParsePlane(s string) (Plane, error) {
	switch s {
	case "axial", "":
		return Axial, nil
	case "coronal":
		return Coronal, nil
	case "sagittal":
		return Sagittal, nil
	}
	return 0, fmt.Errorf("unknown plane %q (want axial, coronal or sagittal)", s)
}

// PlaneAxis returns the array axis (0=i, 1=j, 2=k) held fixed for plane p: the
// axis whose direction is closest to the plane's world normal (S, A, R). For a
// 2D image every plane resolves to k.
func (a Affine) PlaneAxis(p Plane, size [3]int) int {
	if size[2] == 1 {
		return 2
	}
	world := 2 // the plane's normal as a world axis (no map: this runs on every event)
	switch p {
	case Sagittal:
		world = 0
	case Coronal:
		world = 1
	}
	// Assign world axes to array axes greedily by the largest |cosine|, as Orientation does.
	assign := [3]int{-1, -1, -1} // array axis -> world axis
	usedW := [3]bool{}
	usedA := [3]bool{}
	for n := 0; n < 3; n++ {
		best, ba, bw := -1.0, 0, 0
		for c := 0; c < 3; c++ {
			if usedA[c] {
				continue
			}
			norm := math.Sqrt(a[0][c]*a[0][c] + a[1][c]*a[1][c] + a[2][c]*a[2][c])
			for r := 0; r < 3; r++ {
				if usedW[r] {
					continue
				}
				if v := math.Abs(a[r][c]) / norm; v > best {
					best, ba, bw = v, c, r
				}
			}
		}
		usedA[ba], usedW[bw] = true, true
		assign[ba] = bw
	}
	for c := 0; c < 3; c++ {
		if assign[c] == world {
			return c
		}
	}
	return 2
}

// Slice is one 2D cut through a Volume, in array order: u runs along the lower
// remaining array axis, v along the higher one, no flips. Viewers flip for display
// (radiological convention); the model and the label map work in this frame.
type Slice struct {
	Plane    Plane
	Axis     int // array axis held fixed
	Index    int // its index along Axis
	UAxis    int // array axis along u (columns)
	VAxis    int // array axis along v (rows)
	W, H     int
	Channels int
	Data     []float32  // (u + W*v)*Channels + c
	Spacing  [2]float64 // mm per pixel along u and v
}

// SliceAxes returns (u, v) array axes for a fixed axis.
func SliceAxes(axis int) (u, v int) {
	switch axis {
	case 0:
		return 1, 2
	case 1:
		return 0, 2
	}
	return 0, 1
}

// Voxel maps slice pixel (u, v) to the voxel index (i, j, k).
func (s *Slice) Voxel(u, v int) [3]int {
	var p [3]int
	p[s.Axis] = s.Index
	p[s.UAxis] = u
	p[s.VAxis] = v
	return p
}

// NumSlices is the number of slices along the plane's axis.
func (v *Volume) NumSlices(p Plane) int { return v.Size[v.Affine.PlaneAxis(p, v.Size)] }

// SliceView is Slice without the copy when the slice is contiguous (the k
// axis): Data then shares the volume's memory (capacity capped, like
// image.SubImage), so callers must only read it. Other axes are copied.
func (v *Volume) SliceView(p Plane, idx int) (*Slice, error) {
	axis := v.Affine.PlaneAxis(p, v.Size)
	if axis != 2 || idx < 0 || idx >= v.Size[2] {
		return v.Slice(p, idx)
	}
	sp := v.Spacing()
	n := v.Size[0] * v.Size[1] * v.Channels
	return &Slice{Plane: p, Axis: 2, Index: idx, UAxis: 0, VAxis: 1, W: v.Size[0], H: v.Size[1],
		Channels: v.Channels, Data: v.Data[idx*n : (idx+1)*n : (idx+1)*n], Spacing: [2]float64{sp[0], sp[1]}}, nil
}

// Slice extracts slice idx of plane p (a copy; intensities unchanged).
func (v *Volume) Slice(p Plane, idx int) (*Slice, error) {
	axis := v.Affine.PlaneAxis(p, v.Size)
	if idx < 0 || idx >= v.Size[axis] {
		return nil, fmt.Errorf("%s slice %d outside 0..%d", p, idx, v.Size[axis]-1)
	}
	ua, va := SliceAxes(axis)
	sp := v.Spacing()
	s := &Slice{Plane: p, Axis: axis, Index: idx, UAxis: ua, VAxis: va,
		W: v.Size[ua], H: v.Size[va], Channels: v.Channels,
		Spacing: [2]float64{sp[ua], sp[va]}}
	s.Data = make([]float32, s.W*s.H*s.Channels)
	C := v.Channels
	if axis == 2 { // contiguous fast path
		off := idx * s.W * s.H * C
		copy(s.Data, v.Data[off:off+len(s.Data)])
		return s, nil
	}
	var ijk [3]int
	ijk[axis] = idx
	for y := 0; y < s.H; y++ {
		ijk[va] = y
		for x := 0; x < s.W; x++ {
			ijk[ua] = x
			src := v.Index(ijk[0], ijk[1], ijk[2]) * C
			dst := (x + s.W*y) * C
			copy(s.Data[dst:dst+C], v.Data[src:src+C])
		}
	}
	return s, nil
}

// SliceLabels extracts the labels of slice idx along array axis `axis` in the same frame as Volume.Slice.
func (m *LabelMap) SliceLabels(axis, idx int) []uint16 {
	ua, va := SliceAxes(axis)
	w, h := m.Size[ua], m.Size[va]
	out := make([]uint16, w*h)
	var ijk [3]int
	ijk[axis] = idx
	for y := 0; y < h; y++ {
		ijk[va] = y
		for x := 0; x < w; x++ {
			ijk[ua] = x
			out[x+w*y] = m.Data[m.Index(ijk[0], ijk[1], ijk[2])]
		}
	}
	return out
}

// SetSliceLabels writes a slice of labels back (the inverse of SliceLabels).
func (m *LabelMap) SetSliceLabels(axis, idx int, labels []uint16) {
	ua, va := SliceAxes(axis)
	w, h := m.Size[ua], m.Size[va]
	var ijk [3]int
	ijk[axis] = idx
	for y := 0; y < h; y++ {
		ijk[va] = y
		for x := 0; x < w; x++ {
			ijk[ua] = x
			m.Data[m.Index(ijk[0], ijk[1], ijk[2])] = labels[x+w*y]
		}
	}
}
