package model

import (
	"path/filepath"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/volume"
)

func tinyDir(t testing.TB) string { return filepath.Join(td.Root(t), "testdata", "tinymodel") }

func openTiny(t testing.TB, opt Options) *Engine {
	t.Helper()
	if opt.Device == "" {
		opt.Device = "cpu"
	}
	if opt.Threads == 0 {
		opt.Threads = 2
	}
	e, err := Open(tinyDir(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// bundledDir is the bundled model's directory (assets/model), which the test needs.
func bundledDir(t testing.TB) string {
	src := filepath.Join(td.Root(t), "assets", "model")
	td.Need(t, filepath.Join(src, "manifest.json"), "bundled model")
	return src
}

// openEdited opens a copy of the model in src whose manifest edit changed,
// on the CPU with one thread unless opt says otherwise; closed at the test's end.
func openEdited(t *testing.T, src string, edit func(m map[string]any), opt Options) *Engine {
	t.Helper()
	if opt.Device == "" {
		opt.Device = "cpu"
	}
	if opt.Threads == 0 {
		opt.Threads = 1
	}
	e, err := Open(copyModelFrom(t, src, func(m map[string]any, _ string) { edit(m) }), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// blobVolume is an nx x ny x nz grey volume with spacing sp, a bright ellipsoid
// (value 200) of radii r (voxels) at c on a background of 0.
func blobVolume(nx, ny, nz int, sp [3]float64, c, r [3]float64) *volume.Volume {
	v := &volume.Volume{Size: [3]int{nx, ny, nz}, Channels: 1, Data: make([]float32, nx*ny*nz),
		Affine: volume.Identity(), Modality: "MR", Window: [2]float64{100, 200}}
	for i := 0; i < 3; i++ {
		v.Affine[i][i] = sp[i]
	}
	for k := 0; k < nz; k++ {
		for j := 0; j < ny; j++ {
			for i := 0; i < nx; i++ {
				dx, dy, dz := (float64(i)-c[0])/r[0], (float64(j)-c[1])/r[1], (float64(k)-c[2])/r[2]
				if dx*dx+dy*dy+dz*dz <= 1 {
					v.Data[v.Index(i, j, k)] = 200
				}
			}
		}
	}
	return v
}

func dice(a, b []uint8) float64 {
	var inter, na, nb int
	for i := range a {
		if a[i] != 0 {
			na++
			if b[i] != 0 {
				inter++
			}
		}
		if b[i] != 0 {
			nb++
		}
	}
	if na+nb == 0 {
		return 1
	}
	return 2 * float64(inter) / float64(na+nb)
}
