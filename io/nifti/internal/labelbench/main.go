// Command labelbench times nifti.WriteLabelMap for scripts/bench.d/labelmap-write.sh:
// it reads a raw uint8 label volume (i fastest) and writes it as .nii.gz N times,
// printing the best time in seconds as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

func main() {
	in := flag.String("in", "", "raw uint8 labels")
	out := flag.String("out", "", "output .nii.gz")
	nx := flag.Int("nx", 512, "")
	ny := flag.Int("ny", 512, "")
	nz := flag.Int("nz", 324, "")
	sx := flag.Float64("sx", 1, "spacing x")
	sy := flag.Float64("sy", 1, "spacing y")
	sz := flag.Float64("sz", 1, "spacing z")
	reps := flag.Int("n", 3, "repetitions")
	prof := flag.String("cpuprofile", "", "write a CPU profile")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		fail(err)
	}
	m := &volume.LabelMap{Size: [3]int{*nx, *ny, *nz}, Data: make([]uint16, len(raw)),
		Affine: volume.Affine{{-*sx, 0, 0, 120}, {0, -*sy, 0, 110}, {0, 0, *sz, -80}, {0, 0, 0, 1}}}
	if len(raw) != *nx**ny**nz {
		fail(fmt.Errorf("%d bytes for %dx%dx%d", len(raw), *nx, *ny, *nz))
	}
	for i, b := range raw {
		m.Data[i] = uint16(b)
	}
	best, bestCPU := time.Duration(1<<62), time.Duration(1<<62)
	for r := 0; r < *reps; r++ {
		c0 := cpuTime()
		t0 := time.Now()
		if err := nifti.WriteLabelMap(*out, m); err != nil {
			fail(err)
		}
		best = min(best, time.Since(t0))
		bestCPU = min(bestCPU, cpuTime()-c0)
	}
	st, _ := os.Stat(*out)
	json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": best.Seconds(), "cpu_seconds": bestCPU.Seconds(), "bytes": st.Size()})
}

// cpuTime is the CPU time (user + system) this process has used, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "labelbench:", err)
	os.Exit(1)
}
