package nifti

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// Label maps written through the run coder and the parallel gzip writer must
// decode, with the standard library's independent gzip reader, to the same bytes.
func TestLabelGzipDecodesWithStdlib(t *testing.T) {
	defer func(c int) { gzipChunk = c }(gzipChunk)
	gzipChunk = 1 << 15 // many small chunks: the same code paths at a fraction of the cost
	rng := rand.New(rand.NewPCG(1, 2))
	runs := func(n int, maxRun int, maxLabel uint16) []uint16 {
		out := make([]uint16, 0, n)
		for len(out) < n {
			v := uint16(rng.IntN(int(maxLabel) + 1))
			for k := 1 + rng.IntN(maxRun); k > 0 && len(out) < n; k-- {
				out = append(out, v)
			}
		}
		return out
	}
	noise := func(n int) []uint16 {
		out := make([]uint16, n)
		for i := range out {
			out[i] = uint16(rng.IntN(256))
		}
		return out
	}
	big := 3*gzipChunk + 5*4096 // several chunks, a ragged last one
	cases := []struct {
		name string
		data []uint16
	}{
		{"empty-ish", make([]uint16, 1)},
		{"all zero", make([]uint16, big)},
		{"short runs", runs(big, 5, 3)},
		{"long runs", runs(big, 3000, 7)},
		{"runs near 258", runs(big, 270, 255)},
		{"noise (flate fallback)", noise(big)},
		{"runs then noise", append(runs(2*gzipChunk, 600, 2), noise(gzipChunk+7)...)},
		{"wide label at the end", append(runs(big, 400, 9), 300)},
		{"wide labels", runs(big, 50, 1000)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.data
			nx := min(len(data), 4096) // NIfTI-1 dims are int16
			for len(data)%nx != 0 {
				data = append(data, 0)
			}
			c.data = data
			m := &volume.LabelMap{Size: [3]int{nx, len(data) / nx, 1}, Affine: volume.Identity(), Data: data}
			for _, via := range []string{"stream", "file"} {
				var gzBytes []byte
				if via == "stream" {
					var b bytes.Buffer
					if err := EncodeLabelMap(&b, m, true); err != nil {
						t.Fatal(err)
					}
					gzBytes = b.Bytes()
				} else {
					p := filepath.Join(t.TempDir(), "m.nii.gz")
					if err := WriteLabelMap(p, m); err != nil {
						t.Fatal(err)
					}
					v, err := Read(p)
					if err != nil {
						t.Fatal(err)
					}
					for i, l := range c.data {
						if v.Data[i] != float32(l) {
							t.Fatalf("file: label %d = %v, want %d", i, v.Data[i], l)
						}
					}
					continue
				}
				zr, err := gzip.NewReader(bytes.NewReader(gzBytes))
				if err != nil {
					t.Fatal(err)
				}
				raw, err := io.ReadAll(zr) // checks the CRC and length trailer
				if err != nil {
					t.Fatalf("stdlib gzip: %v", err)
				}
				wide := m.MaxLabel() > 255
				size := 1
				if wide {
					size = 2
				}
				if len(raw) != 352+size*len(c.data) {
					t.Fatalf("%d bytes, want %d", len(raw), 352+size*len(c.data))
				}
				for i, l := range c.data {
					got := uint16(raw[352+size*i])
					if wide {
						got |= uint16(raw[352+2*i+1]) << 8
					}
					if got != l {
						t.Fatalf("label %d = %d, want %d", i, got, l)
					}
				}
			}
		})
	}
}

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range [][2]int{{0, 5}, {5, 0}, {1, 1}, {1000, 70000}, {gzipChunk, 3}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		for i := range a {
			a[i] = byte(rng.IntN(256))
		}
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		want := crc32.ChecksumIEEE(append(append([]byte{}, a...), b...))
		if got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b))); got != want {
			t.Errorf("%v: %08x, want %08x", n, got, want)
		}
	}
}

type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, io.ErrShortWrite
	}
	f.left -= len(p)
	return len(p), nil
}

// A writer failing part way stops the parallel encoder cleanly (no hang, the error returned).
func TestParallelGzipWriterError(t *testing.T) {
	defer func(c int) { gzipChunk = c }(gzipChunk)
	gzipChunk = 1 << 12
	rng := rand.New(rand.NewPCG(7, 8))
	data := make([]uint16, 64*64*64)
	for i := range data {
		data[i] = uint16(rng.IntN(3))
	}
	m := &volume.LabelMap{Size: [3]int{64, 64, 64}, Affine: volume.Identity(), Data: data}
	for _, left := range []int{0, 5, 100, 5000, 50000} {
		if err := EncodeLabelMap(&failingWriter{left: left}, m, true); err == nil {
			t.Errorf("failing after %d bytes: no error", left)
		}
	}
	v := &volume.Volume{Size: m.Size, Channels: 1, Affine: m.Affine, Data: make([]float32, len(data)), DataType: "float32"}
	for i := range v.Data {
		v.Data[i] = rng.Float32()
	}
	if err := EncodeVolume(&failingWriter{left: 3000}, v, true); err == nil {
		t.Error("volume: no error")
	}
}
