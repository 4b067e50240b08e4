package model

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/medsa/medsa/model/internal/f16"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

// copyModel copies the tiny model into a temp dir and applies edit to its manifest (as a map).
func copyModel(t *testing.T, edit func(m map[string]any, dir string)) string {
	t.Helper()
	return copyModelFrom(t, tinyDir(t), edit)
}

// copyModelFrom copies the model in src (its manifest and the graphs the
// manifest lists; encoder3d is optional) to a temporary directory, editing its
// manifest with edit (nil: as it is).
func copyModelFrom(t *testing.T, src string, edit func(m map[string]any, dir string)) string {
	t.Helper()
	dst := t.TempDir()
	mb, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var listed struct {
		Files map[string]struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(mb, &listed); err != nil {
		t.Fatalf("%s: %v", filepath.Join(src, "manifest.json"), err)
	}
	names := []string{"manifest.json"}
	for _, f := range listed.Files {
		names = append(names, f.Path)
	}
	for _, f := range names {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		b, _ := os.ReadFile(filepath.Join(dst, "manifest.json"))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		edit(m, dst)
		b, _ = json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dst, "manifest.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestManifestErrors(t *testing.T) {
	sub := func(m map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			m = m[k].(map[string]any)
		}
		return m
	}
	cases := []struct {
		name string
		edit func(m map[string]any, dir string)
		want []string // substrings of the error
	}{
		{"missing file", func(m map[string]any, dir string) { os.Remove(filepath.Join(dir, "decoder.onnx")) },
			[]string{"files.decoder", "decoder.onnx", "no such file"}},
		{"wrong hash", func(m map[string]any, dir string) {
			sub(m, "files", "encoder")["sha256"] = strings.Repeat("0", 64)
		}, []string{"files.encoder", "sha256", "encoder.onnx"}},
		{"corrupt file", func(m map[string]any, dir string) {
			os.WriteFile(filepath.Join(dir, "encoder3d.onnx"), []byte("not onnx"), 0o644)
		}, []string{"files.encoder3d", "sha256"}},
		{"wrong tensor name", func(m map[string]any, dir string) {
			sub(m, "tensors", "encoder")["inputs"] = []string{"pixels"}
		}, []string{"tensors.encoder", `"pixels"`, "encoder.onnx", "image"}},
		{"wrong decoder output", func(m map[string]any, dir string) {
			sub(m, "tensors", "decoder")["outputs"] = []string{"masks", "scores", "low_res_masks"}
		}, []string{"tensors", "decoder.outputs"}},
		{"missing key", func(m map[string]any, dir string) { delete(m, "input_size") }, []string{`missing key "input_size"`}},
		{"bad format", func(m map[string]any, dir string) { m["format"] = "sam/2" }, []string{`"format"`, "sam/2"}},
		{"shape mismatch", func(m map[string]any, dir string) { m["embedding_shape"] = []int{1, 16, 8, 8} },
			[]string{"image_embeddings", "shape"}},
		{"input size mismatch", func(m map[string]any, dir string) { m["input_size"] = 128 },
			[]string{"tensors.encoder", "image", "shape"}},
		{"bad resize", func(m map[string]any, dir string) { m["resize"] = "crop" }, []string{`"resize"`, "crop"}},
		{"encoder3d without depth", func(m map[string]any, dir string) { m["depth_chunk"] = 0 }, []string{"depth_chunk"}},
		{"click_agree out of range", func(m map[string]any, dir string) {
			m["auto_zoom"] = map[string]any{"box_margin": 2.0, "min_side": 48, "max_frac": 0.8, "click_agree": 1.5}
		}, []string{"auto_zoom", "click_agree", "1.5"}},
		{"negative click_min_points", func(m map[string]any, dir string) {
			m["auto_zoom"] = map[string]any{"box_margin": 2.0, "min_side": 48, "max_frac": 0.8, "click_min_points": -1}
		}, []string{"auto_zoom", "click_min_points", "-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyModel(t, c.edit)
			e, err := Open(dir, Options{Device: "cpu", Threads: 1})
			if err == nil {
				e.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("no manifest", func(t *testing.T) {
		_, err := Open(t.TempDir(), Options{Device: "cpu"})
		if err == nil || !strings.Contains(err.Error(), "manifest.json") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad device", func(t *testing.T) {
		_, err := Open(tinyDir(t), Options{Device: "tpu"})
		if err == nil || !strings.Contains(err.Error(), "tpu") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestProviderFallback runs the real CUDA attempt: on a machine without the
// CUDA provider auto falls back to CPU with the reason, and cuda fails.
func TestProviderFallback(t *testing.T) {
	e, err := Open(tinyDir(t), Options{Device: "auto", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := e.Provider()
	if p.Requested != "auto" {
		t.Errorf("Requested = %q", p.Requested)
	}
	switch p.Name {
	case "CPU":
		if p.FallbackReason == "" {
			t.Error("fell back to CPU without a reason")
		}
		if !strings.Contains(p.String(), "CUDA unavailable") {
			t.Errorf("String() = %q", p.String())
		}
		_, err := Open(tinyDir(t), Options{Device: "cuda"})
		if err == nil {
			t.Fatal("device cuda opened on a machine where auto fell back to CPU")
		}
		if !strings.Contains(err.Error(), "cuda") {
			t.Errorf("cuda error %q", err)
		}
		t.Logf("fallback reason: %s", p.FallbackReason)
	case "CUDA":
		if p.FallbackReason != "" {
			t.Errorf("CUDA with fallback reason %q", p.FallbackReason)
		}
	default:
		t.Fatalf("provider %q", p.Name)
	}
	c := openTiny(t, Options{Device: "cpu"})
	if c.Provider().Name != "CPU" || c.Provider().FallbackReason != "" {
		t.Errorf("cpu provider = %+v", c.Provider())
	}
}

func TestFindORTLib(t *testing.T) {
	if _, err := FindORTLib(filepath.Join(t.TempDir(), "nope.so")); err == nil {
		t.Error("explicit missing library accepted")
	}
	t.Setenv("MEDSA_ORT_LIB", "/nonexistent/libonnxruntime.so.1")
	_, err := FindORTLib("")
	if err == nil || !strings.Contains(err.Error(), "MEDSA_ORT_LIB") {
		t.Errorf("err = %v", err)
	}
	t.Setenv("MEDSA_ORT_LIB", "")
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(t.TempDir())
	if p, err := FindORTLib(""); err == nil {
		// Only possible when the library sits next to the test binary.
		t.Logf("found %s", p)
	} else {
		for _, w := range []string{"MEDSA_ORT_LIB", "next to the executable", ".cache/ort"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	}
}

func TestBadPrompts(t *testing.T) {
	e := openTiny(t, Options{})
	vol := blobVolume(40, 30, 5, [3]float64{1, 1, 2}, [3]float64{20, 15, 2}, [3]float64{8, 6, 2})
	ref := SliceRef{Vol: vol, VolumeID: "blob", Plane: volume.Axial, Index: 2}
	L := e.Manifest().LowResMaskSize
	cases := []struct {
		name string
		ref  SliceRef
		p    Prompt
		want string
	}{
		{"none", ref, Prompt{}, "no prompt"},
		{"point outside", ref, Prompt{Points: []Point{{U: 40, V: 3, Positive: true}}}, "outside"},
		{"negative coords", ref, Prompt{Points: []Point{{U: -1, V: 3, Positive: true}}}, "outside"},
		{"box outside", ref, Prompt{Box: &Box{U0: 1, V0: 1, U1: 10, V1: 30}}, "box"},
		{"mask input size", ref, Prompt{Points: []Point{{U: 4, V: 3, Positive: true}}, MaskIn: make([]float32, L)}, "mask input"},
		{"slice outside", SliceRef{Vol: vol, Plane: volume.Axial, Index: 5}, Prompt{Points: []Point{{U: 4, V: 3}}}, "outside"},
		{"no volume", SliceRef{}, Prompt{Points: []Point{{U: 4, V: 3}}}, "without a volume"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Segment(context.Background(), c.ref, c.p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestSegmentBlob: a box around a bright blob gives a mask on the blob; on a
// sagittal slice of an anisotropic volume the mask lands on the right voxels.
func TestSegmentBlob(t *testing.T) {
	e := openTiny(t, Options{})
	vol := blobVolume(60, 50, 40, [3]float64{0.8, 0.8, 1.5}, [3]float64{30, 25, 20}, [3]float64{12, 10, 8})
	for _, plane := range []volume.Plane{volume.Axial, volume.Coronal, volume.Sagittal} {
		t.Run(plane.String(), func(t *testing.T) {
			axis := vol.Affine.PlaneAxis(plane, vol.Size)
			idx := [3]int{30, 25, 20}[axis]
			ref := SliceRef{Vol: vol, VolumeID: "blob", Plane: plane, Index: idx, Window: [2]float64{100, 200}}
			s, _ := vol.Slice(plane, idx)
			truth := make([]uint8, s.W*s.H)
			u0, v0, u1, v1 := s.W, s.H, 0, 0
			for i, x := range s.Data {
				if x > 100 {
					truth[i] = 1
					u, v := i%s.W, i/s.W
					u0, v0, u1, v1 = min(u0, u), min(v0, v), max(u1, u), max(v1, v)
				}
			}
			res, err := e.Segment(context.Background(), ref, Prompt{Box: &Box{U0: float64(u0 - 2), V0: float64(v0 - 2), U1: float64(u1 + 2), V1: float64(v1 + 2)}})
			if err != nil {
				t.Fatal(err)
			}
			if res.W != s.W || res.H != s.H || len(res.Masks) != e.Manifest().NumMaskOutputs {
				t.Fatalf("result %dx%d with %d masks", res.W, res.H, len(res.Masks))
			}
			if res.EncodeMS <= 0 {
				t.Error("first segment on a slice reported no encode")
			}
			if man := e.Manifest(); res.Best != man.Ranking.best(res.Scores, res.LowRes, man.MaskThreshold) {
				t.Errorf("Best %d is not what the manifest's ranking %+v picks", res.Best, man.Ranking)
			}
			if d := dice(res.Masks[res.Best], truth); d < 0.6 {
				t.Errorf("Dice with the blob %.3f < 0.6", d)
			}
			// The mask lands back on the volume grid on the right slice.
			lm := volume.NewLabelMap(vol)
			labels := make([]uint16, len(truth))
			for i, m := range res.Masks[res.Best] {
				labels[i] = uint16(m)
			}
			lm.SetSliceLabels(axis, idx, labels)
			for k := 0; k < vol.Size[2]; k++ {
				for j := 0; j < vol.Size[1]; j++ {
					for i := 0; i < vol.Size[0]; i++ {
						if lm.Data[lm.Index(i, j, k)] != 0 && [3]int{i, j, k}[axis] != idx {
							t.Fatalf("label at (%d,%d,%d) off slice %d of axis %d", i, j, k, idx, axis)
						}
					}
				}
			}
			again, err := e.Segment(context.Background(), ref, Prompt{Points: []Point{{U: float64(u0+u1) / 2, V: float64(v0+v1) / 2, Positive: true}},
				MaskIn: res.LowRes[res.Best]})
			if err != nil {
				t.Fatal(err)
			}
			if again.EncodeMS != 0 {
				t.Errorf("cached slice re-encoded (%.2f ms)", again.EncodeMS)
			}
		})
	}
}

func TestCacheEviction(t *testing.T) {
	// One embedding of the tiny model: 8*8*8 floats = 2 KiB + overhead.
	entry := int64(8*8*8*4 + 256 + len("v"))
	for _, fp16 := range []bool{false, true} {
		c := newEmbedCache(3*entry+10, fp16)
		if fp16 {
			c = newEmbedCache(3*(entry-8*8*8*2)+10, true)
		}
		key := func(i int) CacheKey { return CacheKey{VolumeID: "v", Index: i} }
		emb := func(i int) []float32 {
			x := make([]float32, 8*8*8)
			x[0] = float32(i) + 0.25
			return x
		}
		for i := 0; i < 3; i++ {
			c.put(key(i), emb(i), Geometry{})
		}
		if _, _, ok := c.get(key(0)); !ok { // touch 0: 1 is now least recent
			t.Fatal("entry 0 missing")
		}
		c.put(key(3), emb(3), Geometry{})
		c.put(key(4), emb(4), Geometry{})
		st := c.stats()
		if st.Bytes > st.LimitBytes {
			t.Errorf("fp16=%v: %d bytes over the %d limit", fp16, st.Bytes, st.LimitBytes)
		}
		if st.Entries != 3 || st.Evictions != 2 {
			t.Errorf("fp16=%v: stats %+v, want 3 entries, 2 evictions", fp16, st)
		}
		for i, want := range []bool{true, false, false, true, true} {
			if got := c.has(key(i)); got != want {
				t.Errorf("fp16=%v: has(%d) = %v, want %v", fp16, i, got, want)
			}
		}
		if x, _, _ := c.get(key(4)); x[0] != 4.25 {
			t.Errorf("fp16=%v: value %v", fp16, x[0])
		}
		c.put(key(9), make([]float32, 1<<20), Geometry{}) // larger than the bound: not stored
		if c.has(key(9)) || c.stats().Bytes > c.stats().LimitBytes {
			t.Error("oversized entry stored")
		}
	}
}

// TestEngineCacheBound: encoding many slices keeps the cache within its bound.
func TestEngineCacheBound(t *testing.T) {
	limit := int64(10 * (8*8*8*4 + 300))
	e := openTiny(t, Options{CacheBytes: limit})
	vol := blobVolume(32, 32, 40, [3]float64{1, 1, 1}, [3]float64{16, 16, 20}, [3]float64{8, 8, 10})
	for k := 0; k < 40; k++ {
		if err := e.Encode(context.Background(), SliceRef{Vol: vol, VolumeID: "b", Index: k}); err != nil {
			t.Fatal(err)
		}
		if st := e.CacheStats(); st.Bytes > limit {
			t.Fatalf("after %d slices: %d bytes > %d", k+1, st.Bytes, limit)
		}
	}
	st := e.CacheStats()
	if st.Evictions < 29 || st.Entries > 10 {
		t.Errorf("stats %+v", st)
	}
	if !e.Ready(SliceRef{Vol: vol, VolumeID: "b", Index: 39}) || e.Ready(SliceRef{Vol: vol, VolumeID: "b", Index: 0}) {
		t.Error("LRU kept the wrong slices")
	}
}

func TestHalfRoundTrip(t *testing.T) {
	for _, x := range []float32{0, 1, -1, 0.5, 65504, 1e-7, -3.14159, 6.1e-5, 1e5} {
		y := f16.ToFloat32(f16.FromFloat32(x))
		d := y - x
		if d < 0 {
			d = -d
		}
		tol := max(abs32(x)*1e-3, 6e-8)
		if x == 1e5 {
			if y < 1e30 {
				t.Errorf("%g -> %g, want +Inf", x, y)
			}
			continue
		}
		if d > tol {
			t.Errorf("%g -> %g", x, y)
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestPrefetchAndCancel: prefetch encodes in the background, a new Prefetch
// replaces the queue, and Encode with a cancelled context returns at once.
func TestPrefetchAndCancel(t *testing.T) {
	e := openTiny(t, Options{Threads: 1})
	vol := blobVolume(256, 256, 200, [3]float64{1, 1, 1}, [3]float64{128, 128, 100}, [3]float64{60, 60, 60})
	refs := func(lo, hi int) []SliceRef {
		var r []SliceRef
		for k := lo; k < hi; k++ {
			r = append(r, SliceRef{Vol: vol, VolumeID: "big", Index: k})
		}
		return r
	}
	e.Prefetch(refs(0, 200))
	e.Prefetch(refs(0, 3)) // replaces the queue: the other 197 are stale
	deadline := time.Now().Add(10 * time.Second)
	for !(e.Ready(refs(0, 1)[0]) && e.Ready(refs(1, 2)[0]) && e.Ready(refs(2, 3)[0])) {
		if time.Now().After(deadline) {
			t.Fatal("prefetched slices not ready after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.CacheStats().Entries; n > 20 {
		t.Errorf("%d slices encoded: the replaced queue was not dropped", n)
	}
	if e.Pending() != 0 {
		t.Errorf("pending %d", e.Pending())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Encode(ctx, refs(150, 151)[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("Encode with a cancelled context: %v", err)
	}
	// Foreground encodes while the background works through a long queue.
	e.Prefetch(refs(20, 200))
	var wg sync.WaitGroup
	for k := 10; k < 14; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			if _, err := e.Segment(context.Background(), refs(k, k+1)[0], Prompt{Points: []Point{{U: 128, V: 128, Positive: true}}}); err != nil {
				t.Error(err)
			}
		}(k)
	}
	wg.Wait()
	e.Prefetch(nil)
	if e.Pending() != 0 {
		t.Errorf("pending %d after Prefetch(nil)", e.Pending())
	}
}

// TestCancelRunningEncode: cancelling the context of a waiting Segment returns
// promptly with the context error.
func TestCancelRunningEncode(t *testing.T) {
	e := openTiny(t, Options{Threads: 1})
	vol := blobVolume(64, 64, 300, [3]float64{1, 1, 1}, [3]float64{32, 32, 150}, [3]float64{20, 20, 100})
	var refs []SliceRef
	for k := 0; k < 300; k++ {
		refs = append(refs, SliceRef{Vol: vol, VolumeID: "c", Index: k})
	}
	e.Prefetch(refs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := e.Segment(ctx, SliceRef{Vol: vol, VolumeID: "c", Index: 299}, Prompt{Points: []Point{{U: 1, V: 1, Positive: true}}})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	e.Close()
	if err := e.Encode(context.Background(), refs[5]); err == nil && !e.Ready(refs[5]) {
		t.Error("Encode after Close neither failed nor was cached")
	}
}

func TestPropagateBlob(t *testing.T) {
	for _, threeD := range []bool{false, true} {
		name := "2d"
		if threeD {
			name = "3d"
		}
		t.Run(name, func(t *testing.T) {
			dir := tinyDir(t)
			if !threeD {
				dir = copyModel(t, func(m map[string]any, _ string) {
					delete(m["files"].(map[string]any), "encoder3d")
					delete(m["tensors"].(map[string]any), "encoder3d")
					m["depth_chunk"] = 0
				})
			}
			e, err := Open(dir, Options{Device: "cpu", Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if e.Manifest().Has3D() != threeD {
				t.Fatal("Has3D")
			}
			// A sphere of radius 10 around slice 20 of 40.
			vol := blobVolume(48, 48, 40, [3]float64{1, 1, 1}, [3]float64{24, 24, 20}, [3]float64{10, 10, 10})
			ref := SliceRef{Vol: vol, VolumeID: "s", Plane: volume.Axial, Index: 20, Window: [2]float64{100, 200}}
			res, err := e.Segment(context.Background(), ref, Prompt{Box: &Box{U0: 12, V0: 12, U1: 36, V1: 36}})
			if err != nil {
				t.Fatal(err)
			}
			var calls []int
			up, st, err := e.PropagateStats(context.Background(), ref, res.Masks[res.Best], 39, func(d, n int) {
				calls = append(calls, d)
				if n != 19 {
					t.Errorf("total %d, want 19", n)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			down, st2, err := e.PropagateStats(context.Background(), ref, res.Masks[res.Best], 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("up: %d slices (%s at %d); down: %d slices (%s at %d)", len(up), st.Reason, st.StoppedAt, len(down), st2.Reason, st2.StoppedAt)
			// The sphere spans slices 10..30: propagation must reach near its
			// ends and stop because the mask vanishes before the volume ends.
			if st.Reason != "mask vanished" || st2.Reason != "mask vanished" {
				t.Errorf("reasons %q, %q", st.Reason, st2.Reason)
			}
			for _, k := range []int{25, 15} {
				m := up[k]
				if k < 20 {
					m = down[k]
				}
				s, _ := vol.Slice(volume.Axial, k)
				truth := make([]uint8, len(s.Data))
				for i, x := range s.Data {
					if x > 100 {
						truth[i] = 1
					}
				}
				if d := dice(m, truth); d < 0.5 {
					t.Errorf("slice %d: Dice %.3f", k, d)
				}
			}
			if _, ok := up[35]; ok {
				t.Error("mask at slice 35, outside the sphere")
			}
			if len(calls) == 0 || calls[len(calls)-1] != st.Slices {
				t.Errorf("progress calls %v, slices %d", calls, st.Slices)
			}
			// Cancellation from the progress callback.
			ctx, cancel := context.WithCancel(context.Background())
			part, st3, err := e.PropagateStats(ctx, ref, res.Masks[res.Best], 39, func(d, n int) {
				if d == 3 {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) || st3.Reason != "cancelled" || len(part) != 3 {
				t.Errorf("cancelled propagate: err %v, reason %q, %d slices", err, st3.Reason, len(part))
			}
			if _, err := e.Propagate(context.Background(), ref, make([]uint8, 5), 39, nil); err == nil {
				t.Error("seed of the wrong size accepted")
			}
			if _, err := e.Propagate(context.Background(), ref, res.Masks[res.Best], 40, nil); err == nil {
				t.Error("range end outside the volume accepted")
			}
		})
	}
}

func TestDeepestPoint(t *testing.T) {
	w, h := 20, 10
	m := make([]uint8, w*h)
	// An L shape: the thick part's centre is deepest.
	for v := 2; v < 9; v++ {
		for u := 3; u < 10; u++ {
			m[v*w+u] = 1
		}
	}
	for u := 10; u < 19; u++ {
		m[8*w+u] = 1
	}
	if u, v := DeepestPoint(m, w, h); u != 6 || v != 5 {
		t.Errorf("deepest (%d,%d), want (6,5)", u, v)
	}
	if u, v := DeepestPoint(make([]uint8, w*h), w, h); u != -1 || v != -1 {
		t.Errorf("empty mask: (%d,%d)", u, v)
	}
	// Touching the border: the border counts as background.
	full := make([]uint8, w*h)
	for i := range full {
		full[i] = 1
	}
	if _, v := DeepestPoint(full, w, h); v != 4 && v != 5 {
		t.Errorf("full mask deepest row %d", v)
	}
}

func TestConcurrentSegment(t *testing.T) {
	e := openTiny(t, Options{})
	vol := blobVolume(64, 64, 16, [3]float64{1, 1, 1}, [3]float64{32, 32, 8}, [3]float64{15, 15, 6})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				ref := SliceRef{Vol: vol, VolumeID: "cc", Index: (g + i) % 16}
				if i%3 == 0 {
					e.PrefetchNeighbours(ref, 1, 4)
				}
				if _, err := e.Segment(context.Background(), ref, Prompt{Points: []Point{{U: 32, V: 32, Positive: true}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestPropagateRealVolume propagates through the real ITK T1 (128x128x62, LSA,
// 2x2x3 mm) restricted to its skull-stripped brain, on the coronal plane (the
// k axis of this volume), and compares with the brain mask.
func TestPropagateRealVolume(t *testing.T) {
	dir := filepath.Join(td.Root(t), ".cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data")
	td.Need(t, filepath.Join(dir, "KmeansTest_T1UCharRaw.nii.gz"), "ITK T1 example")
	v, err := nifti.Read(filepath.Join(dir, "KmeansTest_T1UCharRaw.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	brain, err := nifti.Read(filepath.Join(dir, "KmeansTest_T1RawSkullStrip.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range brain.Data {
		if b == 0 {
			v.Data[i] = 0
		}
	}
	e := openTiny(t, Options{})
	plane := volume.Coronal
	axis := v.Affine.PlaneAxis(plane, v.Size)
	if axis != 2 {
		t.Fatalf("coronal axis %d, want 2 (LSA)", axis)
	}
	truth := func(k int) []uint8 {
		s, _ := brain.Slice(plane, k)
		m := make([]uint8, len(s.Data))
		for i, x := range s.Data {
			if x > 0 {
				m[i] = 1
			}
		}
		return m
	}
	mid := 30
	tm := truth(mid)
	w := v.Size[0]
	u0, v0, u1, v1 := w, w, 0, 0
	for i, x := range tm {
		if x != 0 {
			u0, u1 = min(u0, i%w), max(u1, i%w)
			v0, v1 = min(v0, i/w), max(v1, i/w)
		}
	}
	ref := SliceRef{Vol: v, VolumeID: "t1", Plane: plane, Index: mid}
	res, err := e.Segment(context.Background(), ref, Prompt{Box: &Box{U0: float64(u0), V0: float64(v0), U1: float64(u1), V1: float64(v1)}})
	if err != nil {
		t.Fatal(err)
	}
	seed := res.Masks[res.Best]
	if d := dice(seed, tm); d < 0.7 {
		t.Fatalf("seed Dice %.3f", d)
	}
	lm := volume.NewLabelMap(v)
	lm.SetSliceLabels(axis, mid, labels(seed))
	reached := map[int]int{}
	for _, to := range []int{v.Size[2] - 1, 0} {
		out, st, err := e.PropagateStats(context.Background(), ref, seed, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		reached[to] = st.StoppedAt
		t.Logf("towards %d: %d slices, %s at %d", to, len(out), st.Reason, st.StoppedAt)
		for k, m := range out {
			lm.SetSliceLabels(axis, k, labels(m))
		}
	}
	if reached[0] > 8 || reached[v.Size[2]-1] < 54 {
		t.Errorf("propagation stopped early: %v (brain spans slices 2..60)", reached)
	}
	got := make([]uint8, len(lm.Data))
	want := make([]uint8, len(lm.Data))
	for i := range lm.Data {
		got[i] = uint8(lm.Data[i])
		if brain.Data[i] > 0 {
			want[i] = 1
		}
	}
	d := dice(got, want)
	t.Logf("3D Dice with the brain mask: %.3f", d)
	if d < 0.7 {
		t.Errorf("3D Dice %.3f < 0.7", d)
	}
}

func labels(m []uint8) []uint16 {
	out := make([]uint16, len(m))
	for i, x := range m {
		out[i] = uint16(x)
	}
	return out
}

// TestStaleJobCancelled holds a background encode "running" and checks that a
// Prefetch without its slice cancels it, that it is not cached, and that a
// foreground Encode preempts a running background job which is re-queued.
func TestStaleJobCancelled(t *testing.T) {
	e := openTiny(t, Options{Threads: 1})
	vol := blobVolume(32, 32, 10, [3]float64{1, 1, 1}, [3]float64{16, 16, 5}, [3]float64{8, 8, 4})
	ref := func(k int) SliceRef { return SliceRef{Vol: vol, VolumeID: "stale", Index: k} }
	started := make(chan *job, 10)
	release := make(chan struct{})
	testHookJobStart = func(j *job) {
		if j.background {
			started <- j
			<-release
		}
	}
	defer func() { testHookJobStart = nil }()

	e.Prefetch([]SliceRef{ref(0), ref(1)})
	j := <-started
	if j.ref.Index != 0 {
		t.Fatalf("first background job is slice %d, want 0", j.ref.Index)
	}
	e.Prefetch([]SliceRef{ref(5)}) // slice 0 is stale now
	if j.ctx.Err() == nil {
		t.Fatal("stale running job not cancelled")
	}
	release <- struct{}{}
	j2 := <-started
	if j2.ref.Index != 5 {
		t.Fatalf("next background job is slice %d, want 5", j2.ref.Index)
	}
	// A foreground encode of another slice preempts the running background job.
	done := make(chan error)
	go func() { done <- e.Encode(context.Background(), ref(7)) }()
	deadline := time.Now().Add(5 * time.Second)
	for j2.ctx.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("background job not preempted by a foreground encode")
		}
		time.Sleep(time.Millisecond)
	}
	release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j3 := <-started // the preempted slice 5 is re-queued
	if j3.ref.Index != 5 {
		t.Fatalf("re-queued job is slice %d, want 5", j3.ref.Index)
	}
	release <- struct{}{}
	for !e.Ready(ref(5)) {
		if time.Now().After(deadline) {
			t.Fatal("re-queued slice 5 never encoded")
		}
		time.Sleep(time.Millisecond)
	}
	if e.Ready(ref(0)) || e.Ready(ref(1)) {
		t.Error("stale slices were encoded")
	}
	if !e.Ready(ref(7)) {
		t.Error("foreground slice not cached")
	}
}

// TestTerminateRunningEncode: cancelling a context stops an encoder run that
// is already inside ONNX Runtime (RunOptions terminate). Needs an encoder slow
// enough to catch mid-run: the bundled model (skipped with only the tiny one).
func TestTerminateRunningEncode(t *testing.T) {
	dir := filepath.Join(td.Root(t), "assets", "model")
	if d := os.Getenv("MEDSA_MODEL_DIR"); d != "" {
		dir = d
	}
	td.Need(t, filepath.Join(dir, "manifest.json"), "bundled model")
	e, err := Open(dir, Options{Device: "cpu", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	vol := blobVolume(256, 256, 1, [3]float64{1, 1, 1}, [3]float64{128, 128, 0}, [3]float64{60, 60, 1})
	ref := SliceRef{Vol: vol, VolumeID: "term"}
	t0 := time.Now()
	if err := e.Encode(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	e.DropVolume("term")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(full / 10); cancel() }()
	t1 := time.Now()
	err = e.Encode(ctx, ref)
	took := time.Since(t1)
	t.Logf("full encode %v; cancelled after %v, returned after %v: %v", full, full/10, took, err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if e.Ready(ref) {
		t.Error("cancelled encode cached an embedding")
	}
}

// TestFloat16Cache: embeddings stored as float16 give the same masks.
func TestFloat16Cache(t *testing.T) {
	vol := blobVolume(64, 64, 1, [3]float64{1, 1, 1}, [3]float64{30, 34, 0}, [3]float64{14, 10, 1})
	p := Prompt{Points: []Point{{U: 30, V: 34, Positive: true}}, Box: &Box{U0: 14, V0: 22, U1: 46, V1: 46}}
	var masks [][]uint8
	for _, fp16 := range []bool{false, true} {
		e := openTiny(t, Options{CacheFloat16: fp16})
		ref := SliceRef{Vol: vol, VolumeID: "f16"}
		if err := e.Encode(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		res, err := e.Segment(context.Background(), ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if st := e.CacheStats(); st.Float16 != fp16 || (fp16 && st.Bytes > int64(e.Manifest().EmbeddingLen()*2+512)) {
			t.Errorf("fp16=%v: stats %+v", fp16, st)
		}
		masks = append(masks, res.Masks[res.Best])
	}
	if d := dice(masks[0], masks[1]); d < 0.99 {
		t.Errorf("float16 cache changes the mask: Dice %.4f", d)
	}
}

func TestNo3D(t *testing.T) {
	if e := openTiny(t, Options{No3D: true}); e.use3D || e.enc3d != nil {
		t.Error("No3D created an encoder3d session")
	}
	if e := openTiny(t, Options{}); !e.use3D {
		t.Error("tiny model's encoder3d unused")
	}
}

// TestProviderFallbackGPUBuild runs TestProviderFallback in a child process
// with the CUDA build of ONNX Runtime (make gpu): without a GPU, CUDA runtime
// or cuDNN, auto must fall back to the CPU naming the missing library; with
// them, it runs on CUDA. (The ORT library is process-global, hence the child.)
func TestProviderFallbackGPUBuild(t *testing.T) {
	lib := filepath.Join(td.Root(t), ".cache", "ort-gpu", "libonnxruntime.so")
	if _, err := os.Stat(lib); err != nil {
		t.Skip("no GPU build of onnxruntime (make gpu)")
	}
	if os.Getenv("MEDSA_ORT_LIB") == lib {
		t.Skip("already the child")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProviderFallback$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "MEDSA_ORT_LIB="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	switch {
	case strings.Contains(s, "fallback reason: "):
		i := strings.Index(s, "fallback reason: ")
		reason := strings.SplitN(s[i:], "\n", 2)[0]
		t.Log(reason)
		if !strings.Contains(reason, ".so") {
			t.Errorf("the reason names no library: %s", reason)
		}
	case strings.Contains(s, "on CUDA"):
		t.Log("CUDA provider loaded")
	default:
		t.Fatalf("child output:\n%s", s)
	}
}
