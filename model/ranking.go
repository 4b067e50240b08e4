package model

import "fmt"

// Ranking is the manifest's rule for which candidate the engine offers first
// (key "ranking"; absent = the IoU head alone, as SAM does).
//
// A candidate's rank is its IoU prediction plus StabilityWeight × its stability: the
// share of its area that survives moving the mask threshold from -Offset to +Offset
// (SAM's stability score, computed on the low-res logits). Measured on validation items
// of the held-out sources (model/train/REPORT.md), the 2.x IoU head favours the largest
// candidate; stability corrects most of that.
type Ranking struct {
	StabilityWeight float64 `json:"stability_weight"`
	StabilityOffset float32 `json:"stability_offset"`
}

func (r *Ranking) validate() error {
	if r == nil {
		return nil
	}
	if r.StabilityWeight < 0 || r.StabilityWeight > 100 || !(r.StabilityOffset > 0 && r.StabilityOffset <= 20) {
		return fmt.Errorf("key \"ranking\": stability_weight %g (want 0..100), stability_offset %g (want (0, 20])", r.StabilityWeight, r.StabilityOffset)
	}
	return nil
}

// Stability is (n(logit > thr+off) + 1) / (n(logit > thr-off) + 1) over one candidate's
// low-res logits: 1 for a mask with sharp edges, near 0 for a diffuse one.
func Stability(low []float32, thr, off float32) float64 {
	hi, lo := 0, 0
	for _, x := range low {
		if x > thr-off {
			lo++
			if x > thr+off {
				hi++
			}
		}
	}
	return float64(hi+1) / float64(lo+1)
}

// best returns the candidate the ranking puts first.
func (r *Ranking) best(iou []float32, low [][]float32, thr float32) int {
	b, bs := 0, 0.0
	for c := range iou {
		s := float64(iou[c])
		if r != nil && r.StabilityWeight > 0 {
			s += r.StabilityWeight * Stability(low[c], thr, r.StabilityOffset)
		}
		if c == 0 || s > bs {
			b, bs = c, s
		}
	}
	return b
}
