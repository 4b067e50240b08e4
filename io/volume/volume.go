// Package volume is medsa's image model: a voxel grid with exact geometry, and
// a label map on the same grid. It imports nothing of ours.
//
// Conventions (see docs/ARCHITECTURE.md):
//   - index (i, j, k), i fastest; flat offset i + nx*(j + ny*k), as NIfTI stores;
//   - world is RAS+ millimetres; Affine maps (i, j, k, 1) to (x, y, z, 1);
//   - intensities are physical units (HU for CT) as float32; colour images keep
//     their channels interleaved per voxel.
package volume

import (
	"errors"
	"fmt"
	"math"
)

// Volume is a 3D (or 2D, nz = 1) image with its geometry.
type Volume struct {
	Size     [3]int     // nx, ny, nz in array order
	Channels int        // 1 (grey) or 3 (RGB)
	Data     []float32  // len = nx*ny*nz*Channels; channel c of voxel v at v*Channels + c
	Affine   Affine     // index -> world (RAS+ mm), full 4x4, never rounded
	Modality string     // "CT", "MR", "US", "XA", "PT", "OT" (other), "RGB" photo...
	DataType string     // datatype of the source, e.g. "int16", "uint8", "rgb24", "float32"
	Window   [2]float64 // default display window: center, width
	Name     string     // a short study name for titles
	Source   string     // the path it was read from
	Notes    []string   // what the reader wants the user to know (e.g. "4D: showing volume 1 of 20")
}

// Spacing returns the voxel size in mm along i, j, k (the column norms of the affine).
func (v *Volume) Spacing() [3]float64 { return v.Affine.Spacing() }

// NumVoxels is nx*ny*nz.
func (v *Volume) NumVoxels() int { return v.Size[0] * v.Size[1] * v.Size[2] }

// Index is the flat voxel offset of (i, j, k); the caller checks bounds with Contains.
func (v *Volume) Index(i, j, k int) int { return i + v.Size[0]*(j+v.Size[1]*k) }

// Contains reports whether (i, j, k) lies inside the grid.
func (v *Volume) Contains(i, j, k int) bool {
	return i >= 0 && j >= 0 && k >= 0 && i < v.Size[0] && j < v.Size[1] && k < v.Size[2]
}

// At returns channel c of voxel (i, j, k).
func (v *Volume) At(i, j, k, c int) float32 { return v.Data[v.Index(i, j, k)*v.Channels+c] }

// Is2D reports a single-slice image.
func (v *Volume) Is2D() bool { return v.Size[2] == 1 }

// Validate checks the invariants every reader must establish.
func (v *Volume) Validate() error {
	for d, n := range v.Size {
		if n <= 0 {
			return fmt.Errorf("volume: size[%d] = %d, want > 0", d, n)
		}
	}
	if v.Channels != 1 && v.Channels != 3 {
		return fmt.Errorf("volume: %d channels, want 1 or 3", v.Channels)
	}
	if want := v.NumVoxels() * v.Channels; len(v.Data) != want {
		return fmt.Errorf("volume: %d values for %v x %d channels, want %d", len(v.Data), v.Size, v.Channels, want)
	}
	return v.Affine.Validate()
}

// MaxVoxels bounds what a reader may allocate from a header's claims: 2^31 voxels
// (8 GiB as float32). Readers must also check the claim against the bytes the file holds.
const MaxVoxels = 1 << 31

// CheckSize returns an error when a claimed size is non-positive or implausibly large.
func CheckSize(size [3]int, channels int) error {
	n := int64(1)
	for d, s := range size {
		if s <= 0 {
			return fmt.Errorf("dimension %d is %d", d, s)
		}
		n *= int64(s)
		if n*int64(max(channels, 1)) > MaxVoxels {
			return fmt.Errorf("size %v x %d channels exceeds %d voxels", size, channels, int64(MaxVoxels))
		}
	}
	return nil
}

// Affine maps voxel index (i, j, k, 1) to world (x, y, z, 1) in RAS+ mm.
type Affine [4][4]float64

// Identity is the unit affine.
func Identity() Affine {
	return Affine{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
}

// Apply maps an index-space point (possibly fractional) to world mm.
func (a Affine) Apply(p [3]float64) [3]float64 {
	var w [3]float64
	for r := 0; r < 3; r++ {
		w[r] = a[r][0]*p[0] + a[r][1]*p[1] + a[r][2]*p[2] + a[r][3]
	}
	return w
}

// Spacing is the norm of each of the first three columns.
func (a Affine) Spacing() [3]float64 {
	var s [3]float64
	for c := 0; c < 3; c++ {
		s[c] = math.Sqrt(a[0][c]*a[0][c] + a[1][c]*a[1][c] + a[2][c]*a[2][c])
	}
	return s
}

// Validate rejects NaN/Inf entries and a singular 3x3 part.
func (a Affine) Validate() error {
	for r := 0; r < 4; r++ {
		for c := 0; c < 4; c++ {
			if math.IsNaN(a[r][c]) || math.IsInf(a[r][c], 0) {
				return fmt.Errorf("affine: entry [%d][%d] is %v", r, c, a[r][c])
			}
		}
	}
	if d := a.det3(); d == 0 || math.Abs(d) < 1e-12 {
		return errors.New("affine: singular (zero spacing or collinear axes)")
	}
	return nil
}

func (a Affine) det3() float64 {
	return a[0][0]*(a[1][1]*a[2][2]-a[1][2]*a[2][1]) -
		a[0][1]*(a[1][0]*a[2][2]-a[1][2]*a[2][0]) +
		a[0][2]*(a[1][0]*a[2][1]-a[1][1]*a[2][0])
}

// Inverse returns the world -> index affine.
func (a Affine) Inverse() (Affine, error) {
	d := a.det3()
	if d == 0 || math.IsNaN(d) {
		return Affine{}, errors.New("affine: singular")
	}
	var inv Affine
	m := a
	inv[0][0] = (m[1][1]*m[2][2] - m[1][2]*m[2][1]) / d
	inv[0][1] = (m[0][2]*m[2][1] - m[0][1]*m[2][2]) / d
	inv[0][2] = (m[0][1]*m[1][2] - m[0][2]*m[1][1]) / d
	inv[1][0] = (m[1][2]*m[2][0] - m[1][0]*m[2][2]) / d
	inv[1][1] = (m[0][0]*m[2][2] - m[0][2]*m[2][0]) / d
	inv[1][2] = (m[0][2]*m[1][0] - m[0][0]*m[1][2]) / d
	inv[2][0] = (m[1][0]*m[2][1] - m[1][1]*m[2][0]) / d
	inv[2][1] = (m[0][1]*m[2][0] - m[0][0]*m[2][1]) / d
	inv[2][2] = (m[0][0]*m[1][1] - m[0][1]*m[1][0]) / d
	for r := 0; r < 3; r++ {
		inv[r][3] = -(inv[r][0]*m[0][3] + inv[r][1]*m[1][3] + inv[r][2]*m[2][3])
	}
	inv[3] = [4]float64{0, 0, 0, 1}
	return inv, nil
}

// Orientation returns the axis codes (e.g. "RAS", "LPS", "LSA") of the directions
// in which i, j, k increase, by the dominant world component of each column.
func (a Affine) Orientation() string {
	out := make([]byte, 3)
	used := [3]bool{}
	pos := [3]byte{'R', 'A', 'S'}
	neg := [3]byte{'L', 'P', 'I'}
	for c := 0; c < 3; c++ {
		best, bi := -1.0, 0
		for r := 0; r < 3; r++ {
			if v := math.Abs(a[r][c]); v > best && !used[r] {
				best, bi = v, r
			}
		}
		used[bi] = true
		if a[bi][c] >= 0 {
			out[c] = pos[bi]
		} else {
			out[c] = neg[bi]
		}
	}
	return string(out)
}

// SameGrid describes how two grids differ ("" when the same): size, and each
// affine entry within tolMM millimetres (and tolMM/100 for the direction part).
func SameGrid(size1 [3]int, a1 Affine, size2 [3]int, a2 Affine, tolMM float64) string {
	if size1 != size2 {
		return fmt.Sprintf("size %v differs from %v", size2, size1)
	}
	for r := 0; r < 3; r++ {
		for c := 0; c < 4; c++ {
			if math.Abs(a1[r][c]-a2[r][c]) > tolMM {
				return fmt.Sprintf("affine[%d][%d] is %.6g, image has %.6g", r, c, a2[r][c], a1[r][c])
			}
		}
	}
	return ""
}
