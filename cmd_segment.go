package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model"
	"github.com/medsa/medsa/workspace"
)

func init() {
	commands["segment"] = runSegment
	commands["bench"] = runBench
}

const usageSegment = `usage: medsa segment --image PATH --out MASK [--model DIR] [--device auto|cpu|cuda] [--threads N]
       [--plane axial|coronal|sagittal] [--point i,j,k,+] [--point i,j,k,-] ... [--box i0,j0,i1,j1,k]
       [--propagate [--no-3d]] [--series UID] [--state FILE] [--no-zoom] [--force] [--server URL]
  points are voxel indices (i,j,k) in array order (k = 0 for 2D images); the point's index along the
  plane's fixed axis picks the slice. A box gives the two slice-frame corners and the slice: for the
  axial plane of an image stored axially that is i0,j0,i1,j1,k; in general u0,v0,u1,v1,index with u, v
  the two remaining array axes in order. --propagate continues the mask through the volume in both
  directions until it vanishes. Writes a label map (label 1) on the source grid in the format MASK's
  extension names (.nii[.gz], .nrrd, .seg.nrrd for 3D Slicer, .mha, .mhd), or a PNG of label values
  (0/1) when MASK ends in .png and the image is 2D, plus the JSON sidecar (io/mask); .dcm writes a
  DICOM-SEG (one segment, referencing the source series) when the image is DICOM.
  --state FILE refines across calls as clicks in the GUI do: when FILE exists, its prompts (same image,
  plane and slice) are kept, this call's points are added (a new --box replaces the old one) and its
  low-res logits are fed back as the decoder's mask input; the call then writes the new state to FILE.
  Every output is checked before the model runs; a read-only MASK, sidecar or FILE is replaced only
  with --force.
` + usageServerFlags

// pointList collects repeated --point flags.
type pointList []string

func (p *pointList) String() string     { return strings.Join(*p, " ") }
func (p *pointList) Set(s string) error { *p = append(*p, s); return nil }

type segmentArgs struct {
	image, out, modelDir, device, plane, box, series, state string
	threads                                                 int
	points                                                  pointList
	propagate, no3D, noZoom, force                          bool
	server                                                  *serverFlags
}

func parseSegmentArgs(args []string) (*segmentArgs, error) {
	a := &segmentArgs{}
	fs := flag.NewFlagSet("segment", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.image, "image", "", "image path")
	fs.StringVar(&a.out, "out", "", "output mask path")
	fs.StringVar(&a.modelDir, "model", "", "model directory")
	fs.StringVar(&a.device, "device", "auto", "auto, cpu or cuda")
	fs.IntVar(&a.threads, "threads", 0, "CPU threads of the encoder (0 = all cores; the decoder uses 1)")
	fs.StringVar(&a.plane, "plane", "axial", "axial, coronal or sagittal")
	fs.Var(&a.points, "point", "i,j,k,+ or i,j,k,-")
	fs.StringVar(&a.box, "box", "", "i0,j0,i1,j1,k")
	fs.BoolVar(&a.propagate, "propagate", false, "propagate through the volume")
	fs.BoolVar(&a.no3D, "no-3d", false, "propagate with the 2D encoder even when the model has encoder3d")
	fs.StringVar(&a.series, "series", "", "DICOM series UID")
	fs.BoolVar(&a.noZoom, "no-zoom", false, "decode on the full view even when the model has an auto_zoom policy")
	fs.StringVar(&a.state, "state", "", "refinement state file (read if it exists, then written)")
	fs.BoolVar(&a.force, "force", false, "replace MASK (and its sidecar) even when read-only")
	a.server = addServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if a.image == "" || a.out == "" {
		return nil, errors.New("--image and --out are required")
	}
	return a, nil
}

// slicePrompt turns voxel-index prompts into one slice's prompt.
func slicePrompt(v *volume.Volume, plane volume.Plane, points []string, box string) (int, model.Prompt, error) {
	axis := v.Affine.PlaneAxis(plane, v.Size)
	ua, va := volume.SliceAxes(axis)
	var p model.Prompt
	idx := -1
	setIdx := func(i int, what string) error {
		if i < 0 || i >= v.Size[axis] {
			return fmt.Errorf("%s: %s slice %d outside 0..%d", what, plane, i, v.Size[axis]-1)
		}
		if idx >= 0 && idx != i {
			return fmt.Errorf("%s is on %s slice %d, an earlier prompt on slice %d: all prompts must share one slice", what, plane, i, idx)
		}
		idx = i
		return nil
	}
	for _, s := range points {
		f := strings.Split(s, ",")
		if len(f) != 4 || (f[3] != "+" && f[3] != "-") {
			return 0, p, fmt.Errorf("--point %q: want i,j,k,+ or i,j,k,-", s)
		}
		var ijk [3]int
		for d := 0; d < 3; d++ {
			n, err := strconv.Atoi(strings.TrimSpace(f[d]))
			if err != nil {
				return 0, p, fmt.Errorf("--point %q: %v", s, err)
			}
			ijk[d] = n
		}
		if !v.Contains(ijk[0], ijk[1], ijk[2]) {
			return 0, p, fmt.Errorf("--point %q is outside the image (size %d x %d x %d)", s, v.Size[0], v.Size[1], v.Size[2])
		}
		if err := setIdx(ijk[axis], "--point "+s); err != nil {
			return 0, p, err
		}
		p.Points = append(p.Points, model.Point{U: float64(ijk[ua]), V: float64(ijk[va]), Positive: f[3] == "+"})
	}
	if box != "" {
		f := strings.Split(box, ",")
		if len(f) != 5 {
			return 0, p, fmt.Errorf("--box %q: want i0,j0,i1,j1,k", box)
		}
		var n [5]int
		for d := range n {
			x, err := strconv.Atoi(strings.TrimSpace(f[d]))
			if err != nil {
				return 0, p, fmt.Errorf("--box %q: %v", box, err)
			}
			n[d] = x
		}
		w, h := v.Size[ua], v.Size[va]
		for _, c := range [][2]int{{n[0], n[1]}, {n[2], n[3]}} {
			if c[0] < 0 || c[1] < 0 || c[0] >= w || c[1] >= h {
				return 0, p, fmt.Errorf("--box %q: corner (%d,%d) outside the %dx%d %s slice", box, c[0], c[1], w, h, plane)
			}
		}
		if err := setIdx(n[4], "--box "+box); err != nil {
			return 0, p, err
		}
		p.Box = &model.Box{U0: float64(n[0]), V0: float64(n[1]), U1: float64(n[2]), V1: float64(n[3])}
	}
	if idx < 0 {
		return 0, p, errors.New("no prompt: give at least one --point i,j,k,+ or a --box i0,j0,i1,j1,k")
	}
	return idx, p, nil
}

func runSegment(args []string) error {
	a, err := parseSegmentArgs(args)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, usageSegment)
	}
	plane, err := volume.ParsePlane(a.plane)
	if err != nil {
		return err
	}
	if strings.HasSuffix(strings.ToLower(a.out), ".png") && a.propagate {
		return errors.New("--propagate writes a volume: use a .nii.gz, .nii, .nrrd, .seg.nrrd, .mha or .mhd output")
	}
	// Every output is checked before the image is read or the model runs, so a bad
	// one fails fast and nothing is half written (mask.Save commits both together).
	outs := []string{a.out, mask.SidecarPath(a.out)}
	if a.state != "" {
		outs = append(outs, a.state)
	}
	for _, p := range outs {
		if err := checkOutput(p, a.force); err != nil {
			return err
		}
	}
	if isDICOMSEG(a.out) {
		if err := checkDICOMSEGSource(a.out, a.image); err != nil {
			return err
		}
	}
	t0 := time.Now()
	v, err := load.Open(a.image, load.Options{SeriesUID: a.series})
	if list, ok := load.MultipleSeries(err); ok {
		return fmt.Errorf("%s holds %d series: choose one with --series UID (see medsa info %s)", a.image, len(list), a.image)
	}
	if err != nil {
		return err
	}
	tLoad := time.Since(t0)
	printNotes(v)
	imageID := a.image
	if abs, err := filepath.Abs(a.image); err == nil {
		imageID = abs
	}
	var st *segmentState
	points, box := []string(a.points), a.box
	if a.state != "" {
		if st, err = loadState(a.state); err != nil {
			return err
		}
		if st != nil {
			if st.Plane != plane.String() || st.Image != imageID {
				return st.check(a.state, st.Model, imageID, plane.String(), st.Slice)
			}
			if len(points) > 0 || box != "" {
				k, _, err := slicePrompt(v, plane, points, box)
				if err != nil {
					return err
				}
				if err := st.check(a.state, st.Model, imageID, plane.String(), k); err != nil {
					return err
				}
			}
			points = append(append([]string{}, st.Points...), points...)
			if box == "" {
				box = st.Box
			}
		}
	}
	idx, prompt, err := slicePrompt(v, plane, points, box)
	if err != nil {
		return err
	}
	isPNG := strings.HasSuffix(strings.ToLower(a.out), ".png")
	if isPNG && !v.Is2D() {
		return fmt.Errorf("%s: PNG output needs a 2D image, this one has %d slices: use .nii.gz", a.out, v.Size[2])
	}
	dir, err := model.FindModelDir(a.modelDir)
	if err != nil {
		return err
	}
	t1 := time.Now()
	mopt := model.Options{Device: a.device, Threads: a.threads, No3D: a.no3D, NoZoom: a.noZoom}
	a.server.apply(&mopt)
	eng, err := model.Open(dir, mopt)
	if err != nil {
		return err
	}
	defer eng.Close()
	defer reportServer(eng)
	tOpen := time.Since(t1)
	fmt.Printf("provider: %s\n", eng.Provider())
	fmt.Printf("model: %s (%s)\n", eng.Manifest().ID(), dir)
	if st != nil {
		if err := st.check(a.state, eng.Manifest().ID(), imageID, plane.String(), idx); err != nil {
			return err
		}
		if prompt.MaskIn, err = st.logits(a.state, eng.Manifest().LowResMaskSize); err != nil {
			return err
		}
		fmt.Printf("state: %d earlier prompts, previous logits fed back (%s)\n", len(st.Points)+btoi(st.Box != ""), a.state)
	}

	// No cancellation here: main's signal handler removes the temporary files of
	// saves in progress and ends the process with the signal's status.
	ctx := context.Background()
	ref := model.SliceRef{Vol: v, VolumeID: a.image, Plane: plane, Index: idx}
	t2 := time.Now()
	res, err := eng.Segment(ctx, ref, prompt)
	if err != nil {
		return err
	}
	tSeg := time.Since(t2)
	best := res.Masks[res.Best]
	if a.state != "" {
		ns := &segmentState{Format: stateFormat, Model: eng.Manifest().ID(), Image: imageID, Plane: plane.String(),
			Slice: idx, Points: points, Box: box, Best: res.Best, Scores: res.Scores,
			LowResSize: eng.Manifest().LowResMaskSize, LowRes: encodeLogits(res.LowRes[res.Best])}
		if err := saveState(a.state, ns); err != nil {
			return err
		}
	}
	lm := volume.NewLabelMap(v)
	axis := v.Affine.PlaneAxis(plane, v.Size)
	lm.SetSliceLabels(axis, idx, labels16(best))
	fmt.Printf("slice: %s %d (%dx%d); candidates: %v scores, best %d (%d px)\n", plane, idx, res.W, res.H,
		fmtScores(res.Scores), res.Best, res.Areas[res.Best])
	if res.Zoom != nil {
		fmt.Printf("auto-zoom: decoded on the crop u %d..%d, v %d..%d\n", res.Zoom[0], res.Zoom[2]-1, res.Zoom[1], res.Zoom[3]-1)
	}
	fmt.Printf("timings: load %.1f ms, model open %.1f ms, encode %.1f ms, decode %.1f ms, postprocess %.1f ms, segment total %.1f ms\n",
		ms(tLoad), ms(tOpen), res.EncodeMS, res.DecodeMS, res.PostMS, ms(tSeg))
	// The records the GUI keeps (workspace.Meta): a mask made here reopens there with them.
	meta := &workspace.Meta{Tool: "medsa segment", Source: a.image, Model: eng.Manifest().ID(), Provider: eng.Provider().Name,
		Segment: &workspace.SegmentRun{Points: points, Box: box, Propagate: a.propagate, Scores: res.Scores, Best: res.Best}}
	rec := interaction.MaskRecord{Label: 1, Plane: plane.String(), Slice: idx, Candidate: res.Best, Score: res.Scores[res.Best],
		Model: meta.Model, Window: ref.Window, Voxels: res.Areas[res.Best], Time: time.Now().UTC().Format(time.RFC3339)}
	for _, p := range prompt.Points {
		rec.Points = append(rec.Points, interaction.Point{U: p.U, V: p.V, Positive: p.Positive})
	}
	if b := prompt.Box; b != nil {
		rec.Box = &interaction.Rect{U0: b.U0, V0: b.V0, U1: b.U1, V1: b.V1}
	}
	meta.Masks = append(meta.Masks, rec)
	if a.propagate && !v.Is2D() {
		t3 := time.Now()
		report := func(to, slices int, st model.PropagateStats) {
			fmt.Printf("propagate to %d: %d slices, stopped at %d (%s); encode %.0f ms, decode %.0f ms\n",
				to, slices, st.StoppedAt, st.Reason, st.EncodeMS, st.DecodeMS)
		}
		// The GUI's propagation loop, over the whole volume.
		out, err := workspace.PropagateSlices(ctx, eng, ref, best, 0, v.NumSlices(plane)-1, nil, report)
		if err != nil {
			return err
		}
		pr := interaction.MaskRecord{Label: 1, Plane: plane.String(), Slice: idx, Candidate: -1, Model: meta.Model,
			Window: ref.Window, Time: rec.Time}
		lo, hi := idx, idx
		for k, m := range out {
			lm.SetSliceLabels(axis, k, labels16(m))
			lo, hi = min(lo, k), max(hi, k)
			for _, x := range m {
				pr.Voxels += int(x)
			}
		}
		if len(out) > 0 {
			to := hi
			if hi == idx {
				to = lo
			}
			pr.ToSlice = &to
			meta.Masks = append(meta.Masks, pr)
		}
		fmt.Printf("propagation: %d slices in %.1f ms\n", len(out), ms(time.Since(t3)))
	}
	if sst := eng.ServerStatus(); sst.RemoteEncodes > 0 {
		meta.Segment.EncoderServer = sst.URL
	}
	if res.Zoom != nil {
		meta.Segment.ZoomCrop = res.Zoom[:]
	}
	labels := []volume.Label{{Value: 1, Name: "segment", Color: mask.DefaultColor(1)}}
	if isDICOMSEG(a.out) {
		err = saveDICOMSEG(a.out, a.image, a.series, v, lm, labels, meta)
	} else {
		err = mask.Save(a.out, lm, labels, meta)
	}
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d voxels labelled\n", a.out, lm.Count(1))
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func labels16(m []uint8) []uint16 {
	out := make([]uint16, len(m))
	for i, x := range m {
		out[i] = uint16(x)
	}
	return out
}

func fmtScores(s []float32) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = strconv.FormatFloat(float64(x), 'f', 3, 32)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
