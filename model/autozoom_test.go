package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// TestAutoZoomParity checks zoomCrop and remapLow against evaluate.py's mirror
// (crop_rect, remap_low), whose answers model/train/zoom_cases.py wrote.
func TestAutoZoomParity(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "autozoom", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	type geo struct{ W, H, W2, H2, S, L int }
	var cases struct {
		Policy AutoZoom `json:"policy"`
		Crops  []struct {
			BBox   [4]float64 `json:"bbox"`
			Margin float64    `json:"margin"`
			W, H   int
			Crop   *[4]int `json:"crop"`
		} `json:"crops"`
		Agree []struct {
			A, B       string
			ClickAgree float64 `json:"click_agree"`
			Keep       bool
		} `json:"agree"`
		BoxClip []struct {
			Box    [4]float64 `json:"box"`
			Clicks [][3]any   `json:"clicks"`
			W, H   int
			Rect   [4]int `json:"rect"`
		} `json:"box_clip"`
		Remap struct {
			Src    []float32  `json:"src"`
			GS     geo        `json:"gs"`
			GD     geo        `json:"gd"`
			Offset [2]float64 `json:"offset"`
			Out    []float32  `json:"out"`
		} `json:"remap"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases.Crops) == 0 || cases.Policy.MinSide == 0 {
		t.Fatal("no cases")
	}
	for i, c := range cases.Crops {
		r, ok := zoomCrop(c.BBox[0], c.BBox[1], c.BBox[2], c.BBox[3], cases.Policy, c.Margin, c.W, c.H)
		if ok != (c.Crop != nil) {
			t.Errorf("case %d %v: zoom %v, Python %v", i, c.BBox, ok, c.Crop)
			continue
		}
		if ok && [4]int{r.X0, r.Y0, r.X1, r.Y1} != *c.Crop {
			t.Errorf("case %d %v: crop %v, Python %v", i, c.BBox, r, *c.Crop)
		}
	}
	if cases.Policy.ClickAgree == 0 || cases.Policy.ClickMinPoints == 0 {
		t.Errorf("policy %+v: the cases do not carry the click acceptance keys", cases.Policy)
	}
	kept := 0
	for i, c := range cases.Agree {
		bits := func(s string) []uint8 {
			out := make([]uint8, len(s))
			for j := range s {
				out[j] = s[j] - '0'
			}
			return out
		}
		z := cases.Policy
		z.ClickAgree = c.ClickAgree
		if got := keepZoomed(bits(c.A), bits(c.B), z); got != c.Keep {
			t.Errorf("agree case %d (click_agree %g): keep %v, Python %v", i, c.ClickAgree, got, c.Keep)
		}
		if c.Keep {
			kept++
		}
	}
	if len(cases.Agree) == 0 || kept == 0 || kept == len(cases.Agree) {
		t.Errorf("%d agree cases, %d kept: not a useful test", len(cases.Agree), kept)
	}
	if len(cases.BoxClip) == 0 {
		t.Error("no box clip cases")
	}
	for i, c := range cases.BoxClip {
		p := Prompt{Box: &Box{U0: c.Box[0], V0: c.Box[1], U1: c.Box[2], V1: c.Box[3]}}
		for _, k := range c.Clicks {
			p.Points = append(p.Points, Point{U: k[0].(float64), V: k[1].(float64), Positive: k[2].(bool)})
		}
		if r := boxClipRect(p, c.W, c.H); [4]int{r.X0, r.Y0, r.X1, r.Y1} != c.Rect {
			t.Errorf("box clip case %d %v %v: %v, Python %v", i, c.Box, c.Clicks, r, c.Rect)
		}
	}
	rm := cases.Remap
	g := func(x geo) Geometry { return Geometry{W: x.W, H: x.H, W2: x.W2, H2: x.H2, S: x.S, L: x.L} }
	out := remapLow(rm.Src, g(rm.GS), rm.Offset[0], rm.Offset[1], g(rm.GD), zoomFill)
	if len(out) != len(rm.Out) {
		t.Fatalf("remap: %d values, Python %d", len(out), len(rm.Out))
	}
	inside := 0
	for i := range out {
		if math.Abs(float64(out[i]-rm.Out[i])) > 1e-4 {
			t.Fatalf("remap[%d] = %g, Python %g", i, out[i], rm.Out[i])
		}
		if out[i] != zoomFill {
			inside++
		}
	}
	if inside == 0 || inside == len(out) {
		t.Errorf("remap case covers %d of %d cells: not a useful test", inside, len(out))
	}
}

// TestRemapRoundTrip: logits moved into a crop's frame and back are unchanged
// inside the crop and background outside.
func TestRemapRoundTrip(t *testing.T) {
	m := &Manifest{InputSize: 64, LowResMaskSize: 64, Resize: "longest_side_pad", PixelAspect: "physical"}
	full := m.Geometry(128, 128, [2]float64{1, 1})
	crop := m.Geometry(64, 64, [2]float64{1, 1})
	src := make([]float32, 64*64)
	for i := range src {
		src[i] = float32(i%64) - float32(i/64)
	}
	in := remapLow(src, full, -32, -32, crop, zoomFill)
	back := remapLow(in, crop, 32, 32, full, zoomFill)
	for j := 0; j < 64; j++ {
		for i := 0; i < 64; i++ {
			v := back[j*64+i]
			if i >= 17 && i < 47 && j >= 17 && j < 47 {
				if math.Abs(float64(v-src[j*64+i])) > 1e-3 {
					t.Fatalf("cell (%d,%d): %g after the round trip, want %g", i, j, v, src[j*64+i])
				}
			} else if i < 15 || i >= 49 || j < 15 || j >= 49 {
				if v != zoomFill {
					t.Fatalf("cell (%d,%d) outside the crop: %g", i, j, v)
				}
			}
		}
	}
}

// TestSegmentAutoZoom: with a zoom policy a box is decoded on a crop around
// it, the answer comes back on the full slice (zero outside the crop, logits
// in the full view's frame) and the crop's embedding is cached; NoZoom and a
// box as large as the slice decode the full view.
func TestSegmentAutoZoom(t *testing.T) {
	dir := copyModelFrom(t, tinyDir(t), func(m map[string]any, _ string) {
		m["auto_zoom"] = map[string]any{"box_margin": 2.0, "min_side": 32, "click_below": 0.05, "click_margin": 2.5, "max_frac": 0.8}
	})
	v := blobVolume(160, 120, 1, [3]float64{1, 1, 1}, [3]float64{40, 30, 0}, [3]float64{8, 6, 1})
	ref := SliceRef{Vol: v, VolumeID: "blob", Plane: 0, Index: 0}
	for _, tc := range []struct {
		name   string
		noZoom bool
		box    Box
		zoomed bool
	}{
		{"small box", false, Box{30, 22, 50, 38}, true},
		{"no zoom", true, Box{30, 22, 50, 38}, false},
		{"slice-sized box", false, Box{0, 0, 159, 119}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Open(dir, Options{Device: "cpu", Threads: 1, NoZoom: tc.noZoom})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			res, err := e.Segment(context.Background(), ref, Prompt{Box: &tc.box})
			if err != nil {
				t.Fatal(err)
			}
			if (res.Zoom != nil) != tc.zoomed {
				t.Fatalf("zoom %v, want zoomed=%v", res.Zoom, tc.zoomed)
			}
			L := e.Manifest().LowResMaskSize
			if res.W != 160 || res.H != 120 || len(res.Masks[0]) != 160*120 || len(res.LowRes[0]) != L*L {
				t.Fatalf("result %dx%d, mask %d, logits %d", res.W, res.H, len(res.Masks[0]), len(res.LowRes[0]))
			}
			if !tc.zoomed {
				return
			}
			z := *res.Zoom
			if z[0] > 30 || z[1] > 22 || z[2] < 51 || z[3] < 39 || z[2]-z[0] >= 160 {
				t.Errorf("crop %v does not hold the box", z)
			}
			for i, x := range res.Masks[res.Best] {
				u, w := i%160, i/160
				if x != 0 && (u < z[0] || u >= z[2] || w < z[1] || w >= z[3]) {
					t.Fatalf("mask pixel (%d,%d) outside the crop %v", u, w, z)
				}
			}
			before := e.CacheStats().Entries
			res2, err := e.Segment(context.Background(), ref, Prompt{Box: &tc.box, MaskIn: res.LowRes[res.Best]})
			if err != nil {
				t.Fatal(err)
			}
			if e.CacheStats().Entries != before || res2.EncodeMS != 0 {
				t.Errorf("refining on the same crop encoded again (%d -> %d entries, %.1f ms)", before, e.CacheStats().Entries, res2.EncodeMS)
			}
		})
	}
}

// TestClickZoomAcceptance: click zoom waits for click_min_points points, and
// with click_agree a zoomed answer that disagrees with the full view is
// dropped (click_agree 1 keeps only an identical mask, so the answer is the
// full view's whatever the crop gave). The bundled model: the tiny one finds
// no mask to zoom onto.
func TestClickZoomAcceptance(t *testing.T) {
	src := bundledDir(t)
	v := blobVolume(160, 120, 1, [3]float64{1, 1, 1}, [3]float64{40, 30, 0}, [3]float64{8, 6, 1})
	ref := SliceRef{Vol: v, VolumeID: "blob", Plane: 0, Index: 0}
	two := Prompt{Points: []Point{{U: 40, V: 30, Positive: true}, {U: 43, V: 31, Positive: true}}}
	openWith := func(zoom map[string]any, noZoom bool) *Engine {
		t.Helper()
		return openEdited(t, src, func(m map[string]any) { m["auto_zoom"] = zoom }, Options{NoZoom: noZoom})
	}
	policy := func(minPts int, agree float64) map[string]any {
		return map[string]any{"box_margin": 2.0, "min_side": 32, "click_below": 0.9, "click_margin": 2.5,
			"max_frac": 1.0, "click_min_points": minPts, "click_agree": agree}
	}
	full, err := openWith(policy(0, 0), true).Segment(context.Background(), ref, two)
	if err != nil {
		t.Fatal(err)
	}
	area := full.Areas[full.Best]
	if area == 0 || area >= 160*120/4 {
		t.Fatalf("the bundled model's full-view mask covers %d px: this test needs a small, non-empty one", area)
	}
	for _, tc := range []struct {
		name   string
		minPts int
		agree  float64
		p      Prompt
		zoomed bool
	}{
		{"one click, zoom from 2", 2, 0, Prompt{Points: two.Points[:1]}, false},
		{"two clicks, zoom from 2", 2, 0, two, true},
		{"two clicks, zoom from the first", 0, 0, two, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := openWith(policy(tc.minPts, tc.agree), false).Segment(context.Background(), ref, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if (res.Zoom != nil) != tc.zoomed {
				t.Fatalf("zoom %v, want zoomed=%v", res.Zoom, tc.zoomed)
			}
		})
	}
	res, err := openWith(policy(2, 1), false).Segment(context.Background(), ref, two)
	if err != nil {
		t.Fatal(err)
	}
	if d := dice(res.Masks[res.Best], full.Masks[full.Best]); d != 1 {
		t.Errorf("click_agree 1: the answer differs from the full view's (Dice %.3f, zoom %v)", d, res.Zoom)
	}
}

// TestBoxClip: with "box_clip" a box prompt's masks hold no pixel outside the
// box (widened to a positive click outside it), the areas are recounted and
// the low-res logits are the decoder's. The flow is the GUI's: a click on the
// bundled sample's centre (whose answer is most of the brain), then a box
// around it with that answer fed back; without the clip the bundled model
// follows the fed-back mask far outside the box (checked, else this test
// proves nothing).
func TestBoxClip(t *testing.T) {
	src := bundledDir(t)
	v, err := load.Open(filepath.Join(td.Root(t), "assets", "sample", "brain_t1.nii.gz"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := SliceRef{Vol: v, VolumeID: "sample", Plane: volume.Axial, Index: v.NumSlices(volume.Axial) / 2}
	w, h := sliceSize(v, ref.Plane)
	open := func(clip bool) *Engine {
		t.Helper()
		return openEdited(t, src, func(m map[string]any) { m["box_clip"] = clip }, Options{})
	}
	cu, cv := float64(w/2), float64(h/2)
	click := Point{U: cu, V: cv, Positive: true}
	box := &Box{U0: cu - 8, V0: cv - 8, U1: cu + 8, V1: cv + 8}
	inBox := cropRect{w/2 - 8, h/2 - 8, w/2 + 9, h/2 + 9}
	outside := func(m []uint8, c cropRect) (out, in int) {
		for i, x := range m {
			if x == 0 {
				continue
			}
			u, v := i%w, i/w
			if u < c.X0 || u >= c.X1 || v < c.Y0 || v >= c.Y1 {
				out++
			} else {
				in++
			}
		}
		return out, in
	}
	for _, tc := range []struct {
		name string
		p    Prompt
		rect cropRect
	}{
		{"box", Prompt{Box: box}, inBox},
		{"click then box", Prompt{Box: box, Points: []Point{click}}, inBox},
		{"click then box and a click outside it", Prompt{Box: box, Points: []Point{click, {U: cu + 20, V: cv - 12, Positive: true}}},
			cropRect{inBox.X0, inBox.Y0 - 4, w/2 + 21, inBox.Y1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, clipped := open(false), open(true)
			first, err := raw.Segment(context.Background(), ref, Prompt{Points: []Point{click}})
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.p.Points) > 0 {
				tc.p.MaskIn = first.LowRes[first.Best]
			}
			a, err := raw.Segment(context.Background(), ref, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := outside(a.Masks[a.Best], tc.rect); len(tc.p.Points) > 0 && o < 100 {
				t.Fatalf("without box_clip the mask has %d px outside %v: not a useful test", o, tc.rect)
			}
			res, err := clipped.Segment(context.Background(), ref, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			for k, m := range res.Masks {
				o, in := outside(m, tc.rect)
				if o != 0 {
					t.Errorf("candidate %d: %d px outside %v", k, o, tc.rect)
				}
				if in != res.Areas[k] {
					t.Errorf("candidate %d: area %d, counted %d", k, res.Areas[k], in)
				}
			}
			if res.Areas[res.Best] == 0 {
				t.Error("the clipped mask is empty")
			}
			for k := range res.LowRes {
				for i := range res.LowRes[k] {
					if res.LowRes[k][i] != a.LowRes[k][i] {
						t.Fatalf("candidate %d: low-res logit %d changed by the clip", k, i)
					}
				}
			}
		})
	}
}

// TestSegmentEarly: SegmentEarly hands over the full view's answer before a
// box's crop is encoded (box clip applied) and before every zoomed decode of
// clicks; a box whose crop is cached is answered directly. The final answer
// is Segment's.
func TestSegmentEarly(t *testing.T) {
	src := bundledDir(t)
	v := blobVolume(160, 120, 1, [3]float64{1, 1, 1}, [3]float64{40, 30, 0}, [3]float64{8, 6, 1})
	ref := SliceRef{Vol: v, VolumeID: "blob", Plane: 0, Index: 0}
	box := &Box{U0: 30, V0: 22, U1: 50, V1: 38}
	two := []Point{{U: 40, V: 30, Positive: true}, {U: 43, V: 31, Positive: true}}
	for _, tc := range []struct {
		name      string
		p         Prompt
		earlyWarm int // early calls once the crop is cached
	}{
		{"box", Prompt{Box: box}, 0},
		{"two clicks", Prompt{Points: two}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openEdited(t, src, func(m map[string]any) {
				m["auto_zoom"] = map[string]any{"box_margin": 2.0, "min_side": 32, "click_below": 0.9, "click_margin": 2.5,
					"max_frac": 1.0, "click_min_points": 2}
				m["box_clip"] = true
			}, Options{})
			// As in the GUI, the slice on view is encoded before the prompt.
			if err := e.Encode(context.Background(), ref); err != nil {
				t.Fatal(err)
			}
			var got []*Result
			early := func(r *Result) { got = append(got, r) }
			res, err := e.SegmentEarly(context.Background(), ref, tc.p, early)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("early called %d times on a cold crop, want 1", len(got))
			}
			if got[0].Zoom != nil || res.Zoom == nil {
				t.Fatalf("early zoom %v, final zoom %v: want the full view first, then the crop", got[0].Zoom, res.Zoom)
			}
			if got[0].EncodeMS != 0 {
				t.Errorf("early answer encoded %.1f ms: the full view was cached", got[0].EncodeMS)
			}
			if tc.p.Box != nil {
				for i, x := range got[0].Masks[got[0].Best] {
					if u, w := i%160, i/160; x != 0 && (u < 30 || u > 50 || w < 22 || w > 38) {
						t.Fatalf("early box answer has pixel (%d,%d) outside the box", u, w)
					}
				}
			}
			again, err := e.SegmentEarly(context.Background(), ref, tc.p, early)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1+tc.earlyWarm {
				t.Errorf("early called %d times once the crop is cached, want %d", len(got)-1, tc.earlyWarm)
			}
			plain, err := e.Segment(context.Background(), ref, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			for k := range plain.Masks {
				if dice(again.Masks[k], plain.Masks[k]) != 1 || dice(res.Masks[k], plain.Masks[k]) != 1 {
					t.Fatalf("candidate %d: SegmentEarly's answer differs from Segment's", k)
				}
			}
		})
	}
}
