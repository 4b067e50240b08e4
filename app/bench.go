package app

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"
)

// ScrollBenchResult is what the scrolling benchmark measured in the real window.
type ScrollBenchResult struct {
	Slices        int     `json:"slices"`
	Frames        int     `json:"frames"`
	Seconds       float64 `json:"seconds"`
	FPS           float64 `json:"fps"`
	RenderMSAvg   float64 `json:"render_ms_avg"` // our raster generator per frame
	FrameMSMax    float64 `json:"frame_ms_max"`  // longest slice-to-painted interval
	ViewW         float32 `json:"view_w"`
	ViewH         float32 `json:"view_h"`
	HeapMiB       float64 `json:"heap_mib"`
	StudySize     [3]int  `json:"study_size"`
	GoMaxProcs    int     `json:"gomaxprocs"`
	WindowScale   float32 `json:"scale"`
	DisplayServer string  `json:"display"`
}

// RunScrollBench scrolls through every slice of the open study, one slice per
// painted frame, and writes the frame rate to path as JSON, then quits. It is
// started by $MEDSA_BENCH_SCROLL=<out.json> (scripts/bench.d/gui.sh).
func (u *UI) RunScrollBench(path string) {
	go func() {
		// Wait for the study and a first frame.
		var d *doc
		for i := 0; i < 600 && d == nil; i++ {
			time.Sleep(100 * time.Millisecond)
			u.doAndWait(func() {
				if u.doc != nil && u.doc.view.Stats().Frames > 0 {
					d = u.doc
				}
			})
		}
		if d == nil {
			fmt.Fprintln(os.Stderr, "medsa: scroll bench: no study shown")
			os.Exit(2)
		}
		time.Sleep(time.Second)
		n := d.view.NumSlices()
		u.doAndWait(func() { d.view.SetIndex(0) })
		time.Sleep(200 * time.Millisecond)
		start := d.view.Stats()
		t0 := time.Now()
		worst := time.Duration(0)
		for i := 1; i < n; i++ {
			ts := time.Now()
			before := d.view.Stats().Frames
			idx := i
			u.do(func() { d.view.SetIndex(idx); u.slider.Value = float64(idx); u.slider.Refresh() })
			for d.view.Stats().Frames == before {
				time.Sleep(200 * time.Microsecond)
			}
			worst = max(worst, time.Since(ts))
		}
		el := time.Since(t0).Seconds()
		end := d.view.Stats()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		frames := end.Frames - start.Frames
		res := ScrollBenchResult{Slices: n - 1, Frames: frames, Seconds: el, FPS: float64(n-1) / el,
			RenderMSAvg: float64(end.RenderNS-start.RenderNS) / float64(max(frames, 1)) / 1e6,
			FrameMSMax:  float64(worst.Microseconds()) / 1000, HeapMiB: float64(ms.HeapAlloc) / (1 << 20),
			StudySize: d.Vol.Size, GoMaxProcs: runtime.GOMAXPROCS(0), DisplayServer: os.Getenv("DISPLAY")}
		u.doAndWait(func() {
			sz := d.view.Size()
			res.ViewW, res.ViewH = sz.Width, sz.Height
			res.WindowScale = u.W.Canvas().Scale()
		})
		data, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "medsa: scroll bench: %v\n", err)
		}
		fmt.Println(string(data))
		u.do(func() { u.A.Quit() })
	}()
}
