package interaction

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/medsa/medsa/io/volume"
)

// TestLongSessionMemory simulates a long editing session on a CT-sized volume:
// clicks accepted as masks, brush and eraser strokes, propagations over many
// slices, fills, clears, bursts of undo and redo. The heap must stay bounded:
// volume + label map + the history's byte limit, whatever the number of edits.
// MEDSA_LONG_SESSION_EDITS sets the number of edits (scripts/bench.d/gui.sh
// runs 2400: one every 3 s for two hours); the default keeps make test quick.
func TestLongSessionMemory(t *testing.T) {
	edits := 300
	nz := 60
	if s := os.Getenv("MEDSA_LONG_SESSION_EDITS"); s != "" {
		edits, _ = strconv.Atoi(s)
		nz = 300
	}
	const limit = 64 << 20
	vol := testVol(512, 512, nz, [3]float64{0.7, 0.7, 1})
	s := NewSession(vol)
	s.SetHistoryLimit(limit)
	c := NewController(s)
	rng := rand.New(rand.NewSource(7))
	base := heapMiB()
	var peak float64
	t0 := time.Now()
	for e := 0; e < edits; e++ {
		k := SliceKey{volume.Axial, rng.Intn(nz)}
		switch r := rng.Intn(100); {
		case r < 40: // click + accept a mask of 1-10 cm²
			s.AddPoint(k, 100+rng.Float64()*300, 100+rng.Float64()*300, true)
			_, g := s.Prompts(k)
			rad := 20 + rng.Float64()*40
			s.SetCandidates(&Candidates{Key: k, Gen: g, W: 512, H: 512,
				Masks: [][]uint8{disc(512, 512, 100+rng.Float64()*300, 100+rng.Float64()*300, rad)}})
			if err := s.Accept([2]float64{40, 400}); err != nil {
				t.Fatal(err)
			}
		case r < 75: // brush or eraser stroke
			c.SetTool(ToolBrush)
			if r > 65 {
				c.SetTool(ToolEraser)
			}
			c.SetRadius(2 + rng.Float64()*10)
			u, v := rng.Float64()*512, rng.Float64()*512
			c.Press(k, u, v, Left, false)
			for i := 0; i < 10; i++ {
				u, v = u+rng.Float64()*20-10, v+rng.Float64()*20-10
				c.Move(u, v)
			}
			c.Release(u, v)
		case r < 80: // propagation over 20-60 slices
			from := rng.Intn(nz)
			n := 20 + rng.Intn(40)
			masks := map[int][]uint8{}
			cu, cv := 150+rng.Float64()*200, 150+rng.Float64()*200
			for z := from; z < min(nz, from+n); z++ {
				masks[z] = disc(512, 512, cu, cv, 30+10*math.Sin(float64(z)))
			}
			s.AcceptSlices(volume.Axial, from, s.Active(), masks, [2]float64{40, 400})
		case r < 83:
			s.FillHoles(k)
		case r < 85:
			s.ClearSlice(k)
		default: // a burst of undo, then some redo
			n := 1 + rng.Intn(5)
			for i := 0; i < n; i++ {
				s.Undo()
			}
			for i := 0; i < rng.Intn(n+1); i++ {
				s.Redo()
			}
		}
		if e%50 == 0 || e == edits-1 {
			runtime.GC()
			h := heapMiB()
			peak = max(peak, h)
		}
	}
	hb := s.HistoryBytes()
	volMiB := float64(vol.NumVoxels()*(4+2)) / (1 << 20)
	t.Logf("%d edits in %.1f s: heap %.0f MiB at start, peak %.0f MiB (volume+labels %.0f MiB), history %.1f MiB in %d steps",
		edits, time.Since(t0).Seconds(), base, peak, volMiB, float64(hb)/(1<<20), s.HistoryLen())
	if out := os.Getenv("MEDSA_LONG_SESSION_OUT"); out != "" {
		os.WriteFile(out, []byte(fmt.Sprintf(`{"edits": %d, "seconds": %.1f, "heap_start_mib": %.0f, "heap_peak_mib": %.0f, "volume_labels_mib": %.0f, "history_mib": %.1f, "history_steps": %d, "history_limit_mib": %d}`+"\n",
			edits, time.Since(t0).Seconds(), base, peak, volMiB, float64(hb)/(1<<20), s.HistoryLen(), limit>>20)), 0o644)
	}
	if hb > limit {
		t.Errorf("history %d bytes over its limit %d", hb, limit)
	}
	// Bounded: the start (volume + label map) plus the history limit plus slack for transients.
	if peak > base+float64(limit>>20)+96 {
		t.Errorf("heap peak %.0f MiB, start %.0f MiB: not bounded by the history limit", peak, base)
	}
}

func heapMiB() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}
