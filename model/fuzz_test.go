package model

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// FuzzManifest: any manifest.json gives a model or an error, never a panic.
func FuzzManifest(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(tinyDir(f), "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":"medsa-manifest/1","embedding_shape":[1,0,-1]}`))
	f.Add([]byte(`null`))
	src := tinyDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, n := range []string{"encoder.onnx", "decoder.onnx", "encoder3d.onnx"} {
			os.Symlink(filepath.Join(src, n), filepath.Join(dir, n))
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(dir)
		if err != nil {
			return
		}
		// A valid manifest must preprocess any small slice without panicking.
		for _, sz := range [][2]int{{1, 1}, {3, 700}, {17, 5}} {
			s := &volume.Slice{W: sz[0], H: sz[1], Channels: 1, Data: make([]float32, sz[0]*sz[1]), Spacing: [2]float64{0.5, 3}}
			if _, err := m.Preprocess(s, [2]float64{0, 1}, make([]float32, 3*m.InputSize*m.InputSize)); err != nil {
				t.Fatal(err)
			}
			g := m.Geometry(sz[0], sz[1], s.Spacing)
			g.threshold(make([]float32, g.L*g.L), 0, g.maskWeights(), make([]uint8, sz[0]*sz[1]))
		}
	})
}
