package model

import (
	"encoding/json"
	"math"
	"testing"
)

func TestStability(t *testing.T) {
	sharp := []float32{-9, -9, 9, 9, 9, 9}        // every inside value far above the threshold
	diffuse := []float32{-9, 0.5, 0.5, 0.5, 2, 2} // most of it between -1 and +1
	if s := Stability(sharp, 0, 1); math.Abs(s-1) > 1e-12 {
		t.Errorf("sharp: %g, want 1", s)
	}
	if s := Stability(diffuse, 0, 1); math.Abs(s-3.0/6.0) > 1e-12 {
		t.Errorf("diffuse: %g, want (2+1)/(5+1)", s)
	}
	if s := Stability([]float32{-5, -5}, 0, 1); s != 1 {
		t.Errorf("empty: %g, want 1 (the +1 smoothing)", s)
	}
}

func TestRankingBest(t *testing.T) {
	sharp := []float32{-9, 9, 9, 9}
	diffuse := []float32{0.5, 0.5, 0.5, 2}
	low := [][]float32{diffuse, sharp, diffuse}
	iou := []float32{0.9, 0.6, 0.95}
	cases := []struct {
		name string
		r    *Ranking
		want int
	}{
		{"IoU head alone (no ranking key)", nil, 2},
		{"weight 0", &Ranking{StabilityWeight: 0, StabilityOffset: 1}, 2},
		{"weight 1", &Ranking{StabilityWeight: 1, StabilityOffset: 1}, 1},
		{"small weight keeps the IoU order", &Ranking{StabilityWeight: 0.1, StabilityOffset: 1}, 2},
	}
	for _, c := range cases {
		if got := c.r.best(iou, low, 0); got != c.want {
			t.Errorf("%s: best %d, want %d", c.name, got, c.want)
		}
	}
}

func TestRankingManifestKey(t *testing.T) {
	for _, c := range []struct {
		js string
		ok bool
	}{
		{`{"stability_weight": 1, "stability_offset": 1}`, true},
		{`{"stability_weight": -1, "stability_offset": 1}`, false},
		{`{"stability_weight": 1, "stability_offset": 0}`, false},
		{`{"stability_weight": 1e9, "stability_offset": 1}`, false},
	} {
		var r Ranking
		if err := json.Unmarshal([]byte(c.js), &r); err != nil {
			t.Fatal(err)
		}
		if err := r.validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.js, err)
		}
	}
}
