package model

import (
	"context"
	"os"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/volume"
)

// benchDir is the bundled model when present (MEDSA_MODEL_DIR overrides), else the tiny one.
func benchDir(b *testing.B) string {
	if d := os.Getenv("MEDSA_MODEL_DIR"); d != "" {
		return d
	}
	d := td.Root(b) + "/assets/model"
	if _, err := os.Stat(d + "/manifest.json"); err == nil {
		return d
	}
	return tinyDir(b)
}

func benchSlice() *volume.Slice {
	v := blobVolume(512, 512, 1, [3]float64{0.7, 0.7, 1}, [3]float64{256, 256, 0}, [3]float64{100, 80, 1})
	s, _ := v.Slice(volume.Axial, 0)
	return s
}

func BenchmarkPreprocess512(b *testing.B) {
	m, err := LoadManifest(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	s := benchSlice()
	dst := make([]float32, 3*m.InputSize*m.InputSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Preprocess(s, [2]float64{100, 200}, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostprocess512 turns M low-res candidates into 512x512 masks.
func BenchmarkPostprocess512(b *testing.B) {
	m, err := LoadManifest(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	g := m.Geometry(512, 512, [2]float64{0.7, 0.7})
	L := m.LowResMaskSize
	low := make([]float32, L*L)
	for i := range low {
		low[i] = float32(i%L) - float32(L/2)
	}
	dst := make([]uint8, 512*512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mw := g.maskWeights()
		for c := 0; c < m.NumMaskOutputs; c++ {
			g.threshold(low, 0, mw, dst)
		}
	}
}

func benchEngine(b *testing.B) (*Engine, SliceRef) {
	e, err := Open(benchDir(b), Options{Device: "cpu", Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	v := blobVolume(512, 512, 1, [3]float64{0.7, 0.7, 1}, [3]float64{256, 256, 0}, [3]float64{100, 80, 1})
	return e, SliceRef{Vol: v, VolumeID: "bench", Window: [2]float64{100, 200}}
}

func BenchmarkEncode(b *testing.B) {
	e, ref := benchEngine(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.DropVolume("bench")
		if err := e.Encode(context.Background(), ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is one click with a cached embedding (decoder + masks).
func BenchmarkDecode(b *testing.B) {
	e, ref := benchEngine(b)
	p := Prompt{Points: []Point{{U: 256, V: 256, Positive: true}}}
	if _, err := e.Segment(context.Background(), ref, p); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Segment(context.Background(), ref, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeepestPoint512(b *testing.B) {
	w, h := 512, 512
	m := make([]uint8, w*h)
	for v := 100; v < 400; v++ {
		for u := 150; u < 300; u++ {
			m[v*w+u] = 1
		}
	}
	for i := 0; i < b.N; i++ {
		DeepestPoint(m, w, h)
	}
}
