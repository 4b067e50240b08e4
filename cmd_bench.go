package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model"
)

const usageBench = `usage: medsa bench [--image PATH] [--model DIR] [--device auto|cpu|cuda] [--threads N] [--decoder-threads N]
       [--n N] [--json] [--cache-mib N] [--propagate N] [--no-3d] [--series UID] [--server URL]
  warm-up, then N runs each of: encoder (one slice), decoder (one click, cached embedding), click->mask
  (decode + masks at slice resolution + write into the label map), a corrective click (2 points, previous
  mask fed back, any crop the zoom policy encodes included); first_mask_ms is open image -> first
  mask on the middle slice. --propagate N also times propagation through N slices (needs a 3D image).
  Without --image a synthetic 256x256 phantom is used. With --server the encoder runs are timed on the server
  (encode_remote_ms_*, wire_bytes_per_embedding) and then locally (encode_ms_*); "provider" is "server" when
  the server encoded every one of them.
` + usageServerFlags

// benchReport is what --json prints.
type benchReport struct {
	Provider       string  `json:"provider"`
	FallbackReason string  `json:"fallback_reason,omitempty"`
	Model          string  `json:"model"`
	Image          string  `json:"image"`
	Slice          string  `json:"slice"`
	Threads        int     `json:"threads"`
	DecoderThreads int     `json:"decoder_threads"`
	N              int     `json:"n"`
	OpenModelMS    float64 `json:"open_model_ms"`
	EncodeP50      float64 `json:"encode_ms_p50"`
	EncodeP95      float64 `json:"encode_ms_p95"`
	DecodeP50      float64 `json:"decode_ms_p50"`
	DecodeP95      float64 `json:"decode_ms_p95"`
	PostP50        float64 `json:"postprocess_ms_p50"`
	ClickP50       float64 `json:"click_to_mask_ms_p50"`
	ClickP95       float64 `json:"click_to_mask_ms_p95"`
	// A corrective click (a second point, the previous logits fed back), where
	// the zoom policy may decode on a crop; a crop's first encoding is counted.
	CorrectP50    float64 `json:"correction_to_mask_ms_p50"`
	CorrectP95    float64 `json:"correction_to_mask_ms_p95"`
	CorrectZoomed int     `json:"correction_zoomed"`
	// The same clicks as an interactive caller sees them (Engine.SegmentEarly):
	// until the first mask is shown, which is the full view's answer where a
	// decode on a crop follows (the GUI replaces it with the final one).
	CorrectFirstP50 float64 `json:"correction_first_mask_ms_p50"`
	CorrectFirstP95 float64 `json:"correction_first_mask_ms_p95"`
	CorrectEarly    int     `json:"correction_early"`
	FirstMaskMS     float64 `json:"first_mask_ms"`
	PropSlices      int     `json:"propagate_slices,omitempty"`
	PropMS          float64 `json:"propagate_ms,omitempty"`
	PropStop        string  `json:"propagate_stop,omitempty"`
	PropCPUS        float64 `json:"propagate_cpu_s,omitempty"`
	CacheBytes      int64   `json:"cache_bytes"`
	CacheLimit      int64   `json:"cache_limit_bytes"`
	MaxRSSMiB       float64 `json:"max_rss_mib"`
	RSSMiB          float64 `json:"rss_mib"`
	HeapMiB         float64 `json:"go_heap_mib"`
	// With --server:
	Server          string  `json:"server,omitempty"`
	ServerStatus    string  `json:"server_status,omitempty"`
	LocalProvider   string  `json:"local_provider,omitempty"` // where encode_ms_* ran
	EncodeRemoteP50 float64 `json:"encode_remote_ms_p50,omitempty"`
	EncodeRemoteP95 float64 `json:"encode_remote_ms_p95,omitempty"`
	WireBytes       int64   `json:"wire_bytes_per_embedding,omitempty"`
}

func percentile(x []float64, p float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// phantom is a synthetic 256x256 2D grey image with a few ellipses.
func phantom() *volume.Volume {
	n := 256
	v := &volume.Volume{Size: [3]int{n, n, 1}, Channels: 1, Data: make([]float32, n*n), Affine: volume.Identity(),
		Modality: "OT", Name: "phantom", Window: [2]float64{128, 256}}
	ell := [][5]float64{{128, 128, 100, 80, 80}, {100, 110, 30, 20, 200}, {160, 150, 20, 35, 160}}
	for j := 0; j < n; j++ {
		for i := 0; i < n; i++ {
			for _, e := range ell {
				dx, dy := (float64(i)-e[0])/e[2], (float64(j)-e[1])/e[3]
				if dx*dx+dy*dy <= 1 {
					v.Data[i+n*j] = float32(e[4])
				}
			}
		}
	}
	return v
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	imgPath := fs.String("image", "", "image path (default: a synthetic 2D phantom)")
	modelDir := fs.String("model", "", "model directory")
	device := fs.String("device", "auto", "auto, cpu or cuda")
	threads := fs.Int("threads", 0, "CPU threads of the encoder (0 = all cores)")
	decThreads := fs.Int("decoder-threads", 0, "CPU threads of the decoder (0 = 1)")
	n := fs.Int("n", 30, "timed runs per measurement")
	asJSON := fs.Bool("json", false, "print one JSON object")
	prop := fs.Int("propagate", 0, "also propagate through this many slices")
	series := fs.String("series", "", "DICOM series UID")
	cacheMiB := fs.Int64("cache-mib", 0, "embedding cache bound in MiB (0 = 1024)")
	no3D := fs.Bool("no-3d", false, "propagate with the 2D encoder even when the model has encoder3d")
	srv := addServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v\n%s", err, usageBench)
	}
	if *n < 1 {
		return errors.New("--n must be >= 1")
	}
	dir, err := model.FindModelDir(*modelDir)
	if err != nil {
		return err
	}
	t0 := time.Now()
	mopt := model.Options{Device: *device, Threads: *threads, DecoderThreads: *decThreads, CacheBytes: *cacheMiB << 20, No3D: *no3D}
	srv.apply(&mopt)
	eng, err := model.Open(dir, mopt)
	if err != nil {
		return err
	}
	defer eng.Close()
	if st := waitServer(eng, 30*time.Second); st.URL != "" && st.State != model.ServerUp {
		fmt.Fprintf(os.Stderr, "medsa bench: %s\n", st.Text)
	}
	rep := benchReport{Model: eng.Manifest().ID(), Provider: eng.Provider().Name, FallbackReason: eng.Provider().FallbackReason,
		Threads: eng.Provider().Threads, DecoderThreads: eng.Provider().DecoderThreads, N: *n, OpenModelMS: ms(time.Since(t0))}
	ctx := context.Background()

	// First mask: open the image, segment the middle slice with a centre click.
	t1 := time.Now()
	var v *volume.Volume
	if *imgPath == "" {
		v, rep.Image = phantom(), "synthetic phantom 256x256"
	} else {
		v, err = load.Open(*imgPath, load.Options{SeriesUID: *series})
		if err != nil {
			return err
		}
		printNotes(v)
		rep.Image = *imgPath
	}
	plane := volume.Axial
	ns := v.NumSlices(plane)
	mid := ns / 2
	w, h := v.Size[0], v.Size[1]
	if axis := v.Affine.PlaneAxis(plane, v.Size); axis != 2 {
		ua, va := volume.SliceAxes(axis)
		w, h = v.Size[ua], v.Size[va]
	}
	axis := v.Affine.PlaneAxis(plane, v.Size)
	rep.Slice = fmt.Sprintf("%s %d of %d, %dx%d", plane, mid, ns, w, h)
	click := model.Prompt{Points: []model.Point{{U: float64(w / 2), V: float64(h / 2), Positive: true}}}
	lm := volume.NewLabelMap(v)
	ref := model.SliceRef{Vol: v, VolumeID: "bench:" + rep.Image, Plane: plane, Index: mid}
	res, err := eng.Segment(ctx, ref, click)
	if err != nil {
		return err
	}
	lm.SetSliceLabels(axis, mid, labels16(res.Masks[res.Best]))
	rep.FirstMaskMS = ms(time.Since(t1))

	// Encoder: re-encode the slice (cache dropped each time); 2 warm-up runs.
	// With a server: first there, then locally (the server paused).
	encodeRuns := func() ([]float64, error) {
		var enc []float64
		for i := 0; i < *n+2; i++ {
			eng.DropVolume(ref.VolumeID)
			t := time.Now()
			if err := eng.Encode(ctx, ref); err != nil {
				return nil, err
			}
			if i >= 2 {
				enc = append(enc, ms(time.Since(t)))
			}
		}
		return enc, nil
	}
	var dec, post, c2m []float64
	if st0 := eng.ServerStatus(); st0.URL != "" {
		renc, err := encodeRuns()
		if err != nil {
			return err
		}
		st := eng.ServerStatus()
		rep.Server, rep.ServerStatus = st.URL, st.Text
		if st.LocalFallbacks == st0.LocalFallbacks && st.RemoteEncodes-st0.RemoteEncodes == int64(*n+2) {
			rep.Provider, rep.LocalProvider = "server", eng.Provider().Name
			rep.EncodeRemoteP50, rep.EncodeRemoteP95 = percentile(renc, 50), percentile(renc, 95)
			rep.WireBytes = st.LastWireBytes
		} else {
			fmt.Fprintf(os.Stderr, "medsa bench: %s: encoder figures are local\n", st.Text)
		}
		eng.SetServerEnabled(false)
	}
	enc, err := encodeRuns()
	if err != nil {
		return err
	}
	// segment is one prompt -> mask written into the label map, timed; first
	// is the time to the first mask an interactive caller can show (the
	// early answer where there is one, else the final one).
	var first float64
	var early bool
	segment := func(p model.Prompt) (*model.Result, float64, error) {
		t := time.Now()
		early = false
		r, err := eng.SegmentEarly(ctx, ref, p, func(r *model.Result) {
			lm.SetSliceLabels(axis, mid, labels16(r.Masks[r.Best]))
			first, early = ms(time.Since(t)), true
		})
		if err != nil {
			return nil, 0, err
		}
		lm.SetSliceLabels(axis, mid, labels16(r.Masks[r.Best]))
		d := ms(time.Since(t))
		if !early {
			first = d
		}
		return r, d, nil
	}
	// Click -> mask with the embedding cached; clicks move around the centre.
	for i := 0; i < *n+3; i++ {
		r, d, err := segment(model.Prompt{Points: []model.Point{{U: float64(w/2 + (i%5 - 2)), V: float64(h/2 + (i%3 - 1)), Positive: true}}})
		if err != nil {
			return err
		}
		if r.EncodeMS != 0 {
			return errors.New("bench: the cached embedding was re-encoded")
		}
		if i >= 3 {
			c2m = append(c2m, d)
			dec = append(dec, r.DecodeMS)
			post = append(post, r.PostMS)
		}
	}
	// Corrective clicks: the centre click plus one that moves, the previous
	// answer's logits fed back, as the GUI and `segment --state` do.
	var corr, corrFirst []float64
	var prev []float32
	for i := 0; i < *n+3; i++ {
		r, d, err := segment(model.Prompt{Points: []model.Point{{U: float64(w / 2), V: float64(h / 2), Positive: true},
			{U: float64(w/2 + 2*(i%5-2)), V: float64(h/2 + 2*(i%3-1)), Positive: true}}, MaskIn: prev})
		if err != nil {
			return err
		}
		prev = r.LowRes[r.Best]
		if i >= 3 {
			corr = append(corr, d)
			corrFirst = append(corrFirst, first)
			if r.Zoom != nil {
				rep.CorrectZoomed++
			}
			if early {
				rep.CorrectEarly++
			}
		}
	}
	rep.CorrectP50, rep.CorrectP95 = percentile(corr, 50), percentile(corr, 95)
	rep.CorrectFirstP50, rep.CorrectFirstP95 = percentile(corrFirst, 50), percentile(corrFirst, 95)
	rep.EncodeP50, rep.EncodeP95 = percentile(enc, 50), percentile(enc, 95)
	rep.DecodeP50, rep.DecodeP95 = percentile(dec, 50), percentile(dec, 95)
	rep.PostP50 = percentile(post, 50)
	rep.ClickP50, rep.ClickP95 = percentile(c2m, 50), percentile(c2m, 95)

	if *prop > 0 && ns > 1 {
		// Seed with a box prompt on the first slice of the range, then propagate.
		start := max(0, mid-*prop/2)
		to := min(ns-1, start+*prop)
		sref := ref
		sref.Index = start
		seed, err := eng.Segment(ctx, sref, model.Prompt{Box: &model.Box{U0: float64(w / 4), V0: float64(h / 4), U1: float64(3 * w / 4), V1: float64(3 * h / 4)}})
		if err != nil {
			return err
		}
		t, cpu0 := time.Now(), cpuSeconds()
		out, st, err := eng.PropagateStats(ctx, sref, seed.Masks[seed.Best], to, nil)
		if err != nil {
			return err
		}
		rep.PropMS = ms(time.Since(t))
		rep.PropCPUS = cpuSeconds() - cpu0
		rep.PropSlices = len(out)
		rep.PropStop = fmt.Sprintf("%s at %d (range %d..%d)", st.Reason, st.StoppedAt, start, to)
	}
	cs := eng.CacheStats()
	rep.CacheBytes, rep.CacheLimit = cs.Bytes, cs.LimitBytes
	var mstat runtime.MemStats
	runtime.ReadMemStats(&mstat)
	rep.HeapMiB = float64(mstat.HeapAlloc) / (1 << 20)
	rep.MaxRSSMiB = procStatusMiB("VmHWM")
	rep.RSSMiB = procStatusMiB("VmRSS")
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
		return nil
	}
	fmt.Printf("provider: %s", rep.Provider)
	if rep.FallbackReason != "" {
		fmt.Printf(" (CUDA unavailable: %s)", rep.FallbackReason)
	}
	fmt.Printf(", %d encoder / %d decoder threads\nmodel: %s (opened in %.0f ms)\nimage: %s, %s\n", rep.Threads, rep.DecoderThreads, rep.Model, rep.OpenModelMS, rep.Image, rep.Slice)
	if rep.Server != "" {
		fmt.Printf("server         %s\n", rep.ServerStatus)
		if rep.Provider == "server" {
			fmt.Printf("encoder remote p50 %7.1f ms  p95 %7.1f ms  (%d bytes per embedding on the wire)\n", rep.EncodeRemoteP50, rep.EncodeRemoteP95, rep.WireBytes)
		}
	}
	fmt.Printf("encoder        p50 %7.1f ms  p95 %7.1f ms\n", rep.EncodeP50, rep.EncodeP95)
	fmt.Printf("decoder        p50 %7.1f ms  p95 %7.1f ms\n", rep.DecodeP50, rep.DecodeP95)
	fmt.Printf("click->mask    p50 %7.1f ms  p95 %7.1f ms  (postprocess p50 %.1f ms)\n", rep.ClickP50, rep.ClickP95, rep.PostP50)
	fmt.Printf("correction     p50 %7.1f ms  p95 %7.1f ms  (2nd click, previous mask fed back; %d of %d decoded on a crop)\n",
		rep.CorrectP50, rep.CorrectP95, rep.CorrectZoomed, len(corr))
	fmt.Printf("  first mask   p50 %7.1f ms  p95 %7.1f ms  (what the GUI shows first: the full view's answer in the %d decoded on a crop)\n",
		rep.CorrectFirstP50, rep.CorrectFirstP95, rep.CorrectEarly)
	fmt.Printf("first mask     %7.1f ms (open image -> mask)\n", rep.FirstMaskMS)
	if rep.PropSlices > 0 || *prop > 0 {
		fmt.Printf("propagation    %d slices in %.0f ms, %.1f CPU s (%s)\n", rep.PropSlices, rep.PropMS, rep.PropCPUS, rep.PropStop)
	}
	fmt.Printf("memory         cache %.1f / %.0f MiB, Go heap %.1f MiB, RSS %.1f MiB (peak %.1f MiB)\n",
		float64(rep.CacheBytes)/(1<<20), float64(rep.CacheLimit)/(1<<20), rep.HeapMiB, rep.RSSMiB, rep.MaxRSSMiB)
	return nil
}

// cpuSeconds is the process's user + system CPU time (a load-independent cost).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// procStatusMiB reads a /proc/self/status size (VmHWM: peak RSS, VmRSS: now), 0 where unavailable.
func procStatusMiB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb float64
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, key+": %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
