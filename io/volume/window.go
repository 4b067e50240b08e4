package volume

import (
	"math"
	"slices"
)

// PercentileWindow returns a display window (center, width) spanning the lo..hi
// percentiles (e.g. 0.5 and 99.5) of channel 0 of data (channels interleaved).
// Large images are sampled with a fixed stride (about 2^18 values), so the result
// is deterministic and costs a few milliseconds. NaN and Inf values are ignored.
// A constant image gets width 1.
func PercentileWindow(data []float32, channels int, lo, hi float64) [2]float64 {
	if channels < 1 {
		channels = 1
	}
	n := len(data) / channels
	const maxSamples = 1 << 18
	step := 1
	if n > maxSamples {
		step = n / maxSamples
	}
	s := make([]float32, 0, min(n, maxSamples+1))
	for i := 0; i < n; i += step {
		x := data[i*channels]
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			continue
		}
		s = append(s, x)
	}
	if len(s) == 0 {
		return [2]float64{0, 1}
	}
	slices.Sort(s)
	at := func(p float64) float64 {
		k := int(math.Round(p / 100 * float64(len(s)-1)))
		return float64(s[max(0, min(len(s)-1, k))])
	}
	a, b := at(lo), at(hi)
	if b <= a { // nearly constant: fall back to the full range
		a, b = float64(s[0]), float64(s[len(s)-1])
	}
	if b <= a {
		return [2]float64{a, 1}
	}
	return [2]float64{(a + b) / 2, b - a}
}

// AutoWindow is the display window when the file gives none: the 0.5–99.5
// percentiles of a grey image (PercentileWindow, NaN and Inf ignored); colour
// images are shown as stored (0..255).
func (v *Volume) AutoWindow() [2]float64 {
	if v.Channels != 1 {
		return [2]float64{127.5, 255}
	}
	return PercentileWindow(v.Data, 1, 0.5, 99.5)
}
