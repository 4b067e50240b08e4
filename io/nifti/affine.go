package nifti

import (
	"fmt"
	"math"

	"github.com/medsa/medsa/io/volume"
)

// bestAffine chooses the affine as nibabel's get_best_affine does; src names the
// choice ("sform", "qform", "pixdim").
func (h *header) bestAffine(size [3]int) (volume.Affine, string, error) {
	if h.version == 0 {
		return h.analyzeAffine(size), "pixdim", nil
	}
	if h.sformCode > 0 {
		a := volume.Identity()
		for r := 0; r < 3; r++ {
			a[r] = h.srow[r]
		}
		return a, "sform", nil
	}
	if h.qformCode > 0 {
		a, err := h.qform()
		return a, "qform", err
	}
	return h.baseAffine(size), "pixdim", nil
}

// baseAffine is nibabel's shape_zoom_affine: x flipped, origin at the volume centre.
func (h *header) baseAffine(size [3]int) volume.Affine {
	a := volume.Identity()
	z := [3]float64{-h.pixdim[1], h.pixdim[2], h.pixdim[3]}
	nd := int(h.dim[0])
	for k := 0; k < 3; k++ {
		if k >= nd { // nibabel pads missing dims with zoom 1, shape 1
			z[k] = 1
			if k == 0 {
				z[k] = -1
			}
		}
		a[k][k] = z[k]
		a[k][3] = -float64(size[k]-1) / 2 * z[k]
	}
	return a
}

// analyzeAffine is SPM99/SPM2's origin affine (what nibabel loads Analyze with):
// the 1-based origin field when sensible, else the volume centre.
func (h *header) analyzeAffine(size [3]int) volume.Affine {
	z := [3]float64{-h.pixdim[1], h.pixdim[2], h.pixdim[3]}
	use := false
	for k := 0; k < 3; k++ {
		if h.origin[k] != 0 {
			use = true
		}
	}
	for k := 0; k < 3; k++ {
		o, d := float64(h.origin[k]), float64(size[k])
		if !(o > -d && o < 2*d) {
			use = false
		}
	}
	a := volume.Identity()
	for k := 0; k < 3; k++ {
		org := float64(size[k]-1) / 2
		if use {
			org = float64(h.origin[k]) - 1
		}
		a[k][k] = z[k]
		a[k][3] = -org * z[k]
	}
	return a
}

// qform rebuilds the affine from the quaternion, as NIfTI (and nibabel) define it.
func (h *header) qform() (volume.Affine, error) {
	b, c, d := h.quatern[0], h.quatern[1], h.quatern[2]
	w2 := 1 - (b*b + c*c + d*d)
	thresh := -3 * 2.220446049250313e-16 // nibabel: -3 eps of the stored float type
	if h.version == 1 {
		thresh = -3 * 1.1920928955078125e-07
	}
	var w float64
	if w2 < 0 {
		if w2 < thresh {
			return volume.Affine{}, fmt.Errorf("qform quaternion (%g, %g, %g) is not a unit quaternion", b, c, d)
		}
	} else {
		w = math.Sqrt(w2)
	}
	r := quatToMat(w, b, c, d)
	vox := [3]float64{h.pixdim[1], h.pixdim[2], h.pixdim[3] * h.pixdim[0]}
	a := volume.Identity()
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			a[i][j] = r[i][j] * vox[j]
		}
		a[i][3] = h.qoffset[i]
	}
	return a, nil
}

func quatToMat(w, x, y, z float64) [3][3]float64 {
	n := w*w + x*x + y*y + z*z
	if n < 2.220446049250313e-16 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	s := 2 / n
	X, Y, Z := x*s, y*s, z*s
	wX, wY, wZ := w*X, w*Y, w*Z
	xX, xY, xZ := x*X, x*Y, x*Z
	yY, yZ, zZ := y*Y, y*Z, z*Z
	return [3][3]float64{
		{1 - (yY + zZ), xY - wZ, xZ + wY},
		{xY + wZ, 1 - (xX + zZ), yZ - wX},
		{xZ - wY, yZ + wX, 1 - (xX + yY)},
	}
}

// qformParams converts an affine to qform parameters exactly as nibabel's set_qform:
// zooms are the column norms, qfac = -1 when the rotation part has a negative
// determinant (then the third column is negated), shears are removed by the polar
// decomposition (the closest orthogonal matrix), and the quaternion has w >= 0.
func qformParams(a volume.Affine) (quat [3]float64, qfac float64, zooms [3]float64, offset [3]float64) {
	var r [3][3]float64
	zooms = a.Spacing()
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			r[i][j] = a[i][j] / zooms[j]
		}
		offset[i] = a[i][3]
	}
	qfac = 1
	if det3(r) < 0 {
		qfac = -1
		for i := 0; i < 3; i++ {
			r[i][2] = -r[i][2]
		}
	}
	r = polar(r)
	_, x, y, z := matToQuat(r)
	return [3]float64{x, y, z}, qfac, zooms, offset
}

func det3(m [3][3]float64) float64 {
	return m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
}

// polar returns the orthogonal factor of m's polar decomposition (what SVD's
// U·Vᵀ gives) by Newton's iteration X ← (X + X⁻ᵀ)/2, which converges
// quadratically for a non-singular m.
func polar(m [3][3]float64) [3][3]float64 {
	x := m
	for it := 0; it < 100; it++ {
		d := det3(x)
		if d == 0 || math.IsNaN(d) {
			return m
		}
		// inverse transpose = cofactor matrix / det
		var n [3][3]float64
		diff := 0.0
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				i1, i2 := (i+1)%3, (i+2)%3
				j1, j2 := (j+1)%3, (j+2)%3
				cof := x[i1][j1]*x[i2][j2] - x[i1][j2]*x[i2][j1]
				n[i][j] = 0.5 * (x[i][j] + cof/d)
				diff = math.Max(diff, math.Abs(n[i][j]-x[i][j]))
			}
		}
		x = n
		if diff < 1e-15 {
			break
		}
	}
	return x
}

// matToQuat converts a rotation matrix to a unit quaternion with w >= 0
// (Shepperd's method: pick the largest diagonal term for stability).
func matToQuat(m [3][3]float64) (w, x, y, z float64) {
	tr := m[0][0] + m[1][1] + m[2][2]
	switch {
	case tr > 0:
		s := 2 * math.Sqrt(tr+1)
		w = s / 4
		x = (m[2][1] - m[1][2]) / s
		y = (m[0][2] - m[2][0]) / s
		z = (m[1][0] - m[0][1]) / s
	case m[0][0] > m[1][1] && m[0][0] > m[2][2]:
		s := 2 * math.Sqrt(1+m[0][0]-m[1][1]-m[2][2])
		w = (m[2][1] - m[1][2]) / s
		x = s / 4
		y = (m[0][1] + m[1][0]) / s
		z = (m[0][2] + m[2][0]) / s
	case m[1][1] > m[2][2]:
		s := 2 * math.Sqrt(1+m[1][1]-m[0][0]-m[2][2])
		w = (m[0][2] - m[2][0]) / s
		x = (m[0][1] + m[1][0]) / s
		y = s / 4
		z = (m[1][2] + m[2][1]) / s
	default:
		s := 2 * math.Sqrt(1+m[2][2]-m[0][0]-m[1][1])
		w = (m[1][0] - m[0][1]) / s
		x = (m[0][2] + m[2][0]) / s
		y = (m[1][2] + m[2][1]) / s
		z = s / 4
	}
	n := math.Sqrt(w*w + x*x + y*y + z*z)
	w, x, y, z = w/n, x/n, y/n, z/n
	flip := w < 0
	if math.Abs(w) < 1e-6 {
		// A 180° rotation: q and -q are the same, but the reader recomputes w from
		// float32 b, c, d, so the sign decides the rounding. Make the largest of
		// x, y, z positive, which is what nibabel's eigenvector solver yields.
		big := x
		if math.Abs(y) > math.Abs(big) {
			big = y
		}
		if math.Abs(z) > math.Abs(big) {
			big = z
		}
		flip = big < 0
	}
	if flip {
		w, x, y, z = -w, -x, -y, -z
	}
	return
}
