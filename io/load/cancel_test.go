package load

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medsa/medsa/io/metaimage"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/nrrd"
	"github.com/medsa/medsa/io/volume"
)

// countdown is a context that is done after its first `left` Err checks: it
// cancels a read at a deterministic point, without timing.
type countdown struct {
	context.Context
	mu          sync.Mutex
	left, calls int
	done        chan struct{}
}

func newCountdown(left int) *countdown {
	return &countdown{Context: context.Background(), left: left, done: make(chan struct{})}
}

func (c *countdown) Done() <-chan struct{} { return c.done }

func (c *countdown) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.left <= 0 {
		return context.Canceled
	}
	c.left--
	return nil
}

// TestOpenCancelled: a local open stops when its context is done, before the
// first voxel and part-way through the data, for every format that can be
// large; the error says the read was stopped, names the file and wraps
// context.Canceled, and an open that is not cancelled still reads the image.
func TestOpenCancelled(t *testing.T) {
	// 8 MiB of int16 voxels: several chunks of every reader.
	v := &volume.Volume{Size: [3]int{256, 256, 64}, Channels: 1, Affine: volume.Affine{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}, DataType: "int16"}
	v.Data = make([]float32, v.NumVoxels())
	for i := range v.Data {
		v.Data[i] = float32(i % 1000)
	}
	dir := t.TempDir()
	write := func(name string, f func(string, *volume.Volume) error) string {
		p := filepath.Join(dir, name)
		if err := f(p, v); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ name, path string }{
		{"nifti gz", write("big.nii.gz", func(p string, v *volume.Volume) error { return nifti.WriteVolume(p, v) })},
		{"nifti", write("big.nii", func(p string, v *volume.Volume) error { return nifti.WriteVolume(p, v) })},
		{"nrrd", write("big.nrrd", nrrd.WriteVolume)},
		{"metaimage", write("big.mha", metaimage.WriteVolume)},
		{"dicom series", data(t, "derived/dicom/axial")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not cancelled: count the checks a whole read makes.
			full := newCountdown(1 << 30)
			got, err := Open(c.path, Options{Context: full})
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			if full.calls < 4 {
				t.Fatalf("a whole read checked its context %d times: it could not be stopped part-way", full.calls)
			}
			for _, left := range []int{0, full.calls / 2} {
				ctx := newCountdown(left)
				v, err := Open(c.path, Options{Context: ctx})
				if v != nil || !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled after %d of %d checks: volume %v, error %v; want no volume and context.Canceled", left, full.calls, v != nil, err)
				}
				if !strings.Contains(err.Error(), filepath.Base(c.path)) {
					t.Errorf("the error does not name the file: %v", err)
				}
				if strings.Contains(err.Error(), "short") || strings.Contains(err.Error(), "damaged") {
					t.Errorf("a cancelled read reported as bad data: %v", err)
				}
				// Stopping means stopping: few checks after the context went done.
				if extra := ctx.calls - left; extra > 8 {
					t.Errorf("%d context checks after it was done: the read went on", extra)
				}
			}
		})
	}
}
