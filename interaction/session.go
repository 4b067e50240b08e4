// Package interaction holds the annotation state of one study: the label map
// and its label table, prompts per slice, the model's candidate masks, brush
// edits and one undo/redo history of deltas. It does not import Fyne, so every
// rule here is tested without a display.
package interaction

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medsa/medsa/io/volume"
)

// SliceKey names one slice of the study: a plane and an index along it.
type SliceKey struct {
	Plane volume.Plane
	Index int
}

// Point is a prompt point in slice pixel coordinates (the Slice frame of io/volume).
type Point struct {
	U, V     float64
	Positive bool
}

// Rect is a box prompt in slice pixel coordinates, U0<=U1, V0<=V1.
type Rect struct{ U0, V0, U1, V1 float64 }

// Prompts are the prompts on one slice.
type Prompts struct {
	Points []Point
	Box    *Rect
}

// Empty reports no points and no box.
func (p Prompts) Empty() bool { return len(p.Points) == 0 && p.Box == nil }

func (p Prompts) clone() Prompts {
	q := Prompts{Points: append([]Point(nil), p.Points...)}
	if p.Box != nil {
		b := *p.Box
		q.Box = &b
	}
	return q
}

// Candidates are the model's masks for the current prompts of one slice.
type Candidates struct {
	Key    SliceKey
	Gen    uint64 // prompt generation they answer; stale ones are dropped
	W, H   int
	Masks  [][]uint8 // per candidate, W*H, 1 = inside
	Scores []float32
	Best   int
	// LowRes holds each candidate's low-res logits as the model returned them;
	// the selected one is fed back with the next prompt on the same slice.
	LowRes [][]float32
}

// MaskRecord tells how an accepted mask was made (for the JSON sidecar).
type MaskRecord struct {
	Label     uint16     `json:"label"`
	Plane     string     `json:"plane"`
	Slice     int        `json:"slice"`
	ToSlice   *int       `json:"to_slice,omitempty"` // propagation end
	Points    []Point    `json:"points,omitempty"`
	Box       *Rect      `json:"box,omitempty"`
	Candidate int        `json:"candidate"`
	Score     float32    `json:"score"`
	Model     string     `json:"model"`
	Window    [2]float64 `json:"window"`
	Voxels    int        `json:"voxels"`
	Time      string     `json:"time"`
}

// Change flags tell observers what to redraw.
type Change uint32

const (
	ChangeLabels     Change = 1 << iota // label map voxels
	ChangePrompts                       // prompts of some slice
	ChangePreview                       // candidate masks / selection
	ChangeLabelTable                    // names, colours, visibility, active label
	ChangeHistory                       // undo/redo availability
)

// Session is the annotation state of one study. Methods are safe for
// concurrent use; observers are called after the lock is released.
type Session struct {
	mu      sync.Mutex
	vol     *volume.Volume
	lm      *volume.LabelMap
	counts  map[uint16]int64
	labels  []LabelInfo
	active  uint16
	prompts map[SliceKey]Prompts
	gen     map[SliceKey]uint64
	cand    *Candidates
	sel     int
	feed    map[SliceKey][]float32 // logits to refine from when the prompts of a slice grow
	hist    history
	records []MaskRecord
	stroke  *editRecorder
	strokeK SliceKey
	dirty   uint64 // bumped on every change that a save keeps (voxels, label names and colours)

	modelName string // recorded with each accepted mask
	observers []func(Change)
}

// NewSession starts an empty annotation of vol with one label.
func NewSession(vol *volume.Volume) *Session {
	s := &Session{
		vol:     vol,
		lm:      volume.NewLabelMap(vol),
		counts:  map[uint16]int64{0: int64(vol.NumVoxels())},
		prompts: map[SliceKey]Prompts{},
		gen:     map[SliceKey]uint64{},
		feed:    map[SliceKey][]float32{},
		hist:    history{limitBytes: 256 << 20},
	}
	s.labels = []LabelInfo{newLabel(1, "")}
	s.active = 1
	return s
}

// Volume is the image being annotated.
func (s *Session) Volume() *volume.Volume { return s.vol }

// SetModelName names the model recorded with each accepted mask from now on.
func (s *Session) SetModelName(name string) {
	s.mu.Lock()
	s.modelName = name
	s.mu.Unlock()
}

// ModelName is the model recorded with accepted masks.
func (s *Session) ModelName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modelName
}

// WithSliceLabels calls f with the labels of slice index of array axis (W*H,
// Slice frame) under the session's lock: an axial slice is the live label map
// itself (no copy), so f must only read it and must not keep it or call back
// into the session. It reports false when the slice is outside the volume.
func (s *Session) WithSliceLabels(axis, index int, f func(labels []uint16)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if axis < 0 || axis > 2 || index < 0 || index >= s.lm.Size[axis] {
		return false
	}
	if axis == 2 {
		n := s.lm.Size[0] * s.lm.Size[1]
		f(s.lm.Data[index*n : (index+1)*n : (index+1)*n])
	} else {
		f(s.lm.SliceLabels(axis, index))
	}
	return true
}

// SliceLabels returns a copy of the labels of slice k (W*H, Slice frame).
func (s *Session) SliceLabels(k SliceKey) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.frameOf(k)
	if err != nil {
		return nil, err
	}
	return s.lm.SliceLabels(f.axis, f.idx), nil
}

// SnapshotLabels returns a copy of the label map, the label table, the
// records and the generation they are at (what a save or autosave writes).
func (s *Session) SnapshotLabels() (*volume.LabelMap, []volume.Label, []MaskRecord, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lm := &volume.LabelMap{Size: s.lm.Size, Affine: s.lm.Affine, Data: append([]uint16(nil), s.lm.Data...)}
	tab := make([]volume.Label, 0, len(s.labels))
	for _, l := range s.labels {
		tab = append(tab, volume.Label{Value: l.Value, Name: l.Name, Color: l.Color})
	}
	return lm, tab, append([]MaskRecord(nil), s.records...), s.dirty
}

// Generation counts the changes a save keeps: label map edits (undo counts
// too) and label names and colours. Compare it to the value at the last save
// to know whether there are unsaved changes.
func (s *Session) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dirty
}

// Records lists how each accepted mask was made.
func (s *Session) Records() []MaskRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MaskRecord(nil), s.records...)
}

// Observe registers f to be told about changes.
func (s *Session) Observe(f func(Change)) {
	s.mu.Lock()
	s.observers = append(s.observers, f)
	s.mu.Unlock()
}

func (s *Session) notify(c Change) {
	s.mu.Lock()
	obs := append([]func(Change){}, s.observers...)
	s.mu.Unlock()
	for _, f := range obs {
		f(c)
	}
}

// LoadLabelMap replaces the labels with an existing mask on the same grid
// (it becomes the new base: the history is cleared).
func (s *Session) LoadLabelMap(lm *volume.LabelMap, table []volume.Label) error {
	if err := lm.CheckGrid(s.vol); err != nil {
		return err
	}
	s.mu.Lock()
	s.lm = lm
	s.endStrokeLocked()
	s.counts = map[uint16]int64{}
	for _, l := range lm.Data {
		s.counts[l]++
	}
	s.labels = nil
	for _, t := range table {
		if t.Value == 0 {
			continue
		}
		s.labels = append(s.labels, LabelInfo{Value: t.Value, Name: t.Name, Color: t.Color, Visible: true, Opacity: 0.5})
	}
	for v, n := range s.counts {
		if n > 0 {
			s.ensureLabel(v)
		}
	}
	if len(s.labels) == 0 {
		s.labels = []LabelInfo{newLabel(1, "")}
	}
	s.active = s.labels[0].Value
	s.hist = history{limitBytes: s.hist.limitBytes}
	s.records = nil
	s.cand = nil
	s.prompts = map[SliceKey]Prompts{}
	s.dirty++
	s.mu.Unlock()
	s.notify(ChangeLabels | ChangeLabelTable | ChangeHistory | ChangePrompts | ChangePreview)
	return nil
}

// SetRecords replaces the mask records (e.g. read back from a saved sidecar).
func (s *Session) SetRecords(r []MaskRecord) {
	s.mu.Lock()
	s.records = append([]MaskRecord(nil), r...)
	s.mu.Unlock()
}

// --- geometry of a slice key ---

type frame struct {
	axis, ua, va, idx int
	w, h              int
}

func (s *Session) frameOf(k SliceKey) (frame, error) {
	axis := s.vol.Affine.PlaneAxis(k.Plane, s.vol.Size)
	ua, va := volume.SliceAxes(axis)
	if k.Index < 0 || k.Index >= s.vol.Size[axis] {
		return frame{}, fmt.Errorf("%s slice %d outside 0..%d", k.Plane, k.Index, s.vol.Size[axis]-1)
	}
	return frame{axis: axis, ua: ua, va: va, idx: k.Index, w: s.vol.Size[ua], h: s.vol.Size[va]}, nil
}

func (f frame) voxel(u, v int) [3]int {
	var p [3]int
	p[f.axis] = f.idx
	p[f.ua] = u
	p[f.va] = v
	return p
}

// SliceSize returns the (W, H) of a slice of plane p.
func (s *Session) SliceSize(p volume.Plane) (int, int) {
	axis := s.vol.Affine.PlaneAxis(p, s.vol.Size)
	ua, va := volume.SliceAxes(axis)
	return s.vol.Size[ua], s.vol.Size[va]
}

// --- prompts ---

// Prompts returns the prompts of slice k and their generation.
func (s *Session) Prompts(k SliceKey) (Prompts, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prompts[k].clone(), s.gen[k]
}

// editPrompts replaces the prompts of k by edit(current) as one undoable step,
// under one hold of the lock; edit returns false to leave them unchanged.
func (s *Session) editPrompts(k SliceKey, edit func(p Prompts) (Prompts, bool)) bool {
	s.mu.Lock()
	before := s.prompts[k].clone()
	p, ok := edit(before.clone())
	if !ok {
		s.mu.Unlock()
		return false
	}
	s.endStrokeLocked()
	s.putPrompts(k, p)
	s.hist.push(&command{name: "prompt", key: k, promptsBefore: &before, promptsAfter: ptrPrompts(p.clone())})
	s.mu.Unlock()
	s.notify(ChangePrompts | ChangePreview | ChangeHistory)
	return true
}

func ptrPrompts(p Prompts) *Prompts { return &p }

// putPrompts sets prompts without history (lock held).
func (s *Session) putPrompts(k SliceKey, p Prompts) {
	// A corrective prompt refines the mask shown: keep the selected candidate's
	// logits for the decoder (SAM's mask_input), as the model was trained to
	// use them. Anything else (undo, Esc, a removed point) starts afresh.
	if extends(s.prompts[k], p) {
		if c := s.cand; c != nil && c.Key == k && s.sel < len(c.LowRes) {
			s.feed[k] = c.LowRes[s.sel]
		}
	} else {
		delete(s.feed, k)
	}
	if p.Empty() {
		delete(s.prompts, k)
	} else {
		s.prompts[k] = p
	}
	s.gen[k]++
	if s.cand != nil && s.cand.Key == k {
		s.cand = nil
	}
}

// extends reports whether q is p with more points added (the same points
// first) or with a box added or changed: a refinement of what p showed.
func extends(p, q Prompts) bool {
	if p.Empty() || len(q.Points) < len(p.Points) {
		return false
	}
	for i, pt := range p.Points {
		if q.Points[i] != pt {
			return false
		}
	}
	if p.Box != nil && q.Box == nil {
		return false
	}
	boxSame := (p.Box == nil && q.Box == nil) || (p.Box != nil && q.Box != nil && *p.Box == *q.Box)
	return len(q.Points) > len(p.Points) || !boxSame
}

// MaskFeed returns the logits to refine from on slice k (nil: none), see putPrompts.
func (s *Session) MaskFeed(k SliceKey) []float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feed[k]
}

func (s *Session) checkUV(k SliceKey, u, v float64) error {
	f, err := s.frameOf(k)
	if err != nil {
		return err
	}
	if u < 0 || v < 0 || u >= float64(f.w) || v >= float64(f.h) {
		return fmt.Errorf("point (%.1f, %.1f) outside the %dx%d slice", u, v, f.w, f.h)
	}
	return nil
}

// AddPoint adds a positive or negative point on slice k.
func (s *Session) AddPoint(k SliceKey, u, v float64, positive bool) error {
	if err := s.checkUV(k, u, v); err != nil {
		return err
	}
	s.editPrompts(k, func(p Prompts) (Prompts, bool) {
		p.Points = append(p.Points, Point{U: u, V: v, Positive: positive})
		return p, true
	})
	return nil
}

// SetBox sets (replaces) the box prompt on slice k; the corners are clamped to the slice.
func (s *Session) SetBox(k SliceKey, u0, v0, u1, v1 float64) error {
	f, err := s.frameOf(k)
	if err != nil {
		return err
	}
	if u0 > u1 {
		u0, u1 = u1, u0
	}
	if v0 > v1 {
		v0, v1 = v1, v0
	}
	cl := func(x, hi float64) float64 { return min(max(x, 0), hi-1) }
	u0, u1 = cl(u0, float64(f.w)), cl(u1, float64(f.w))
	v0, v1 = cl(v0, float64(f.h)), cl(v1, float64(f.h))
	if u1-u0 < 1 || v1-v0 < 1 {
		return errors.New("box is smaller than one pixel")
	}
	s.editPrompts(k, func(p Prompts) (Prompts, bool) {
		p.Box = &Rect{U0: u0, V0: v0, U1: u1, V1: v1}
		return p, true
	})
	return nil
}

// ClearPrompts removes the prompts of slice k (undoable); false when there were none.
func (s *Session) ClearPrompts(k SliceKey) bool {
	return s.editPrompts(k, func(p Prompts) (Prompts, bool) { return Prompts{}, !p.Empty() })
}

// --- candidates ---

// SetCandidates installs the model's answer for slice c.Key; it is dropped
// (false) when the prompts changed since it was asked for.
func (s *Session) SetCandidates(c *Candidates) bool {
	s.mu.Lock()
	if c == nil || len(c.Masks) == 0 || s.gen[c.Key] != c.Gen || s.prompts[c.Key].Empty() {
		s.mu.Unlock()
		return false
	}
	f, err := s.frameOf(c.Key)
	if err != nil || c.W != f.w || c.H != f.h {
		s.mu.Unlock()
		return false
	}
	s.cand = c
	s.sel = max(min(c.Best, len(c.Masks)-1), 0)
	s.mu.Unlock()
	s.notify(ChangePreview)
	return true
}

// Preview returns the slice of the candidates, the selected candidate mask
// (nil when none), its index, the number of candidates and its score.
func (s *Session) Preview() (key SliceKey, mask []uint8, sel, n int, score float32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cand == nil {
		return SliceKey{}, nil, 0, 0, 0
	}
	sc := float32(0)
	if s.sel < len(s.cand.Scores) {
		sc = s.cand.Scores[s.sel]
	}
	return s.cand.Key, s.cand.Masks[s.sel], s.sel, len(s.cand.Masks), sc
}

// CycleCandidate selects the next candidate (Tab); false when there is nothing to cycle.
func (s *Session) CycleCandidate() bool {
	s.mu.Lock()
	if s.cand == nil || len(s.cand.Masks) < 2 {
		s.mu.Unlock()
		return false
	}
	s.sel = (s.sel + 1) % len(s.cand.Masks)
	s.mu.Unlock()
	s.notify(ChangePreview)
	return true
}

// Accept writes the selected candidate into the active label on its slice,
// clears that slice's prompts and records how the mask was made; one undo step.
func (s *Session) Accept(window [2]float64) error {
	s.mu.Lock()
	s.endStrokeLocked()
	if s.cand == nil {
		s.mu.Unlock()
		return errors.New("no mask to accept: click on the image first")
	}
	c := s.cand
	f, err := s.frameOf(c.Key)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	mask := c.Masks[s.sel]
	box := emptyBox()
	for v := 0; v < f.h; v++ {
		for u := 0; u < f.w; u++ {
			if mask[u+f.w*v] != 0 {
				box.grow(f.voxel(u, v))
			}
		}
	}
	if box.empty() {
		s.mu.Unlock()
		return errors.New("the mask is empty: add a positive point or a box")
	}
	rec := newBoxRecorder(s.lm, s.counts, box)
	n := 0
	for v := 0; v < f.h; v++ {
		for u := 0; u < f.w; u++ {
			if mask[u+f.w*v] != 0 {
				rec.set(f.voxel(u, v), s.active)
				n++
			}
		}
	}
	p := s.prompts[c.Key].clone()
	r := MaskRecord{Label: s.active, Plane: c.Key.Plane.String(), Slice: c.Key.Index, Points: p.Points, Box: p.Box,
		Candidate: s.sel, Model: s.modelName, Window: window, Voxels: n, Time: time.Now().UTC().Format(time.RFC3339)}
	if s.sel < len(c.Scores) {
		r.Score = c.Scores[s.sel]
	}
	cmd := &command{name: "accept", key: c.Key, delta: rec.delta(), promptsBefore: &p, promptsAfter: &Prompts{}, record: &r}
	s.putPrompts(c.Key, Prompts{})
	s.records = append(s.records, r)
	s.hist.push(cmd)
	s.dirty++
	s.mu.Unlock()
	s.notify(ChangeLabels | ChangePrompts | ChangePreview | ChangeHistory)
	return nil
}

// AcceptSlices writes masks of several slices of one plane (propagation) into
// label as one undo step: the label the propagation was started for, which
// need not be the active one any more. masks maps slice index -> W*H mask.
func (s *Session) AcceptSlices(plane volume.Plane, from int, label uint16, masks map[int][]uint8, window [2]float64) (int, error) {
	s.mu.Lock()
	if label == 0 || s.labelIdx(label) < 0 {
		s.mu.Unlock()
		return 0, fmt.Errorf("propagation: no label %d (was it removed?)", label)
	}
	s.endStrokeLocked()
	box := emptyBox()
	type fm struct {
		f frame
		m []uint8
	}
	var fs []fm
	for idx, m := range masks {
		f, err := s.frameOf(SliceKey{plane, idx})
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		if len(m) != f.w*f.h {
			s.mu.Unlock()
			return 0, fmt.Errorf("slice %d: mask has %d pixels, want %d", idx, len(m), f.w*f.h)
		}
		for v := 0; v < f.h; v++ {
			for u := 0; u < f.w; u++ {
				if m[u+f.w*v] != 0 {
					box.grow(f.voxel(u, v))
				}
			}
		}
		fs = append(fs, fm{f, m})
	}
	if box.empty() {
		s.mu.Unlock()
		return 0, errors.New("propagation produced no mask")
	}
	rec := newBoxRecorder(s.lm, s.counts, box)
	n, lo, hi := 0, 1<<30, -1
	for _, x := range fs {
		lo, hi = min(lo, x.f.idx), max(hi, x.f.idx)
		for v := 0; v < x.f.h; v++ {
			for u := 0; u < x.f.w; u++ {
				if x.m[u+x.f.w*v] != 0 {
					rec.set(x.f.voxel(u, v), label)
					n++
				}
			}
		}
	}
	to := hi
	if hi == from {
		to = lo
	}
	r := MaskRecord{Label: label, Plane: plane.String(), Slice: from, ToSlice: &to, Model: s.modelName, Window: window,
		Voxels: n, Time: time.Now().UTC().Format(time.RFC3339), Candidate: -1}
	s.records = append(s.records, r)
	s.hist.push(&command{name: "propagate", delta: rec.delta(), record: &r})
	s.dirty++
	s.mu.Unlock()
	s.notify(ChangeLabels | ChangeHistory)
	return n, nil
}

// --- brush and eraser ---

// BeginStroke starts a brush (paint=true) or eraser stroke on slice k.
func (s *Session) BeginStroke(k SliceKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.frameOf(k); err != nil {
		return err
	}
	s.endStrokeLocked()
	s.stroke = newRecorder(s.lm, s.counts)
	s.strokeK = k
	return nil
}

// StrokeTo stamps a disc of radius r (slice pixels along u; v is scaled by the
// pixel aspect so the disc is round in mm) along the segment (u0,v0)-(u1,v1).
// paint=false erases the active label (other labels are left alone).
func (s *Session) StrokeTo(u0, v0, u1, v1, r float64, paint bool) {
	s.mu.Lock()
	if s.stroke == nil {
		s.mu.Unlock()
		return
	}
	f, _ := s.frameOf(s.strokeK)
	sp := s.vol.Spacing()
	aspect := 1.0 // v pixels per u pixel in mm terms
	if sp[f.va] > 0 {
		aspect = sp[f.ua] / sp[f.va]
	}
	r = max(r, 0.5)
	dist := max(abs(u1-u0), abs(v1-v0))
	steps := int(dist/(r*0.5)) + 1
	for st := 0; st <= steps; st++ {
		t := float64(st) / float64(steps)
		s.stamp(f, u0+(u1-u0)*t, v0+(v1-v0)*t, r, r*aspect, paint)
	}
	s.mu.Unlock()
	s.notify(ChangeLabels)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func (s *Session) stamp(f frame, cu, cv, ru, rv float64, paint bool) {
	u0, u1 := int(cu-ru+0.5), int(cu+ru+0.5)
	v0, v1 := int(cv-rv+0.5), int(cv+rv+0.5)
	for v := max(v0, 0); v <= min(v1, f.h-1); v++ {
		for u := max(u0, 0); u <= min(u1, f.w-1); u++ {
			du, dv := (float64(u)-cu)/ru, (float64(v)-cv)/rv
			if du*du+dv*dv > 1 {
				continue
			}
			p := f.voxel(u, v)
			if paint {
				s.stroke.set(p, s.active)
			} else if s.lm.Data[s.lm.Index(p[0], p[1], p[2])] == s.active {
				s.stroke.set(p, 0)
			}
		}
	}
}

// EndStroke closes the stroke as one undo step; false when it changed nothing.
func (s *Session) EndStroke() bool {
	s.mu.Lock()
	ok := s.endStrokeLocked()
	s.mu.Unlock()
	if ok {
		s.notify(ChangeLabels | ChangeHistory)
	}
	return ok
}

// endStrokeLocked commits a stroke in progress. Every other edit calls it
// first, so an undo (or accept, fill...) pressed while the mouse still paints
// never interleaves with the stroke's record of old values.
func (s *Session) endStrokeLocked() bool {
	if s.stroke == nil {
		return false
	}
	d := s.stroke.delta()
	s.stroke = nil
	if d == nil {
		return false
	}
	s.hist.push(&command{name: "brush", delta: d})
	s.dirty++
	return true
}

// --- slice and label operations ---

// FillHoles fills, on slice k, every region of non-active pixels that does not
// touch the slice border (4-connected background) with the active label.
func (s *Session) FillHoles(k SliceKey) (int, error) {
	s.mu.Lock()
	s.endStrokeLocked()
	f, err := s.frameOf(k)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	lab := s.lm.SliceLabels(f.axis, f.idx)
	outside := make([]bool, len(lab))
	stack := make([]int, 0, 2*(f.w+f.h))
	push := func(u, v int) {
		o := u + f.w*v
		if !outside[o] && lab[o] != s.active {
			outside[o] = true
			stack = append(stack, o)
		}
	}
	for u := 0; u < f.w; u++ {
		push(u, 0)
		push(u, f.h-1)
	}
	for v := 0; v < f.h; v++ {
		push(0, v)
		push(f.w-1, v)
	}
	for len(stack) > 0 {
		o := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		u, v := o%f.w, o/f.w
		if u > 0 {
			push(u-1, v)
		}
		if u < f.w-1 {
			push(u+1, v)
		}
		if v > 0 {
			push(u, v-1)
		}
		if v < f.h-1 {
			push(u, v+1)
		}
	}
	rec := newRecorder(s.lm, s.counts)
	n := 0
	for o, l := range lab {
		if l != s.active && !outside[o] {
			rec.set(f.voxel(o%f.w, o/f.w), s.active)
			n++
		}
	}
	s.finishEdit("fill holes", rec)
	return n, nil
}

// finishEdit pushes a recorded edit (lock held; releases it and notifies).
func (s *Session) finishEdit(name string, rec *editRecorder) {
	d := rec.delta()
	if d != nil {
		s.hist.push(&command{name: name, delta: d})
		s.dirty++
	}
	s.mu.Unlock()
	if d != nil {
		s.notify(ChangeLabels | ChangeHistory)
	}
}

// ClearSlice removes the active label from slice k.
func (s *Session) ClearSlice(k SliceKey) (int, error) {
	s.mu.Lock()
	s.endStrokeLocked()
	f, err := s.frameOf(k)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	rec := newRecorder(s.lm, s.counts)
	n := 0
	for v := 0; v < f.h; v++ {
		for u := 0; u < f.w; u++ {
			p := f.voxel(u, v)
			if s.lm.Data[s.lm.Index(p[0], p[1], p[2])] == s.active {
				rec.set(p, 0)
				n++
			}
		}
	}
	s.finishEdit("clear slice", rec)
	return n, nil
}

// ClearLabel removes label v from the whole volume (one undo step).
func (s *Session) ClearLabel(v uint16) int {
	s.mu.Lock()
	s.endStrokeLocked()
	box := emptyBox()
	nx, ny := s.lm.Size[0], s.lm.Size[1]
	for o, l := range s.lm.Data {
		if l == v {
			box.grow([3]int{o % nx, (o / nx) % ny, o / (nx * ny)})
		}
	}
	rec := newBoxRecorder(s.lm, s.counts, box)
	n := 0
	for k := box.Lo[2]; k < box.Hi[2]; k++ {
		for j := box.Lo[1]; j < box.Hi[1]; j++ {
			for i := box.Lo[0]; i < box.Hi[0]; i++ {
				if s.lm.Data[s.lm.Index(i, j, k)] == v {
					rec.set([3]int{i, j, k}, 0)
					n++
				}
			}
		}
	}
	s.finishEdit("clear label", rec)
	return n
}

// LabelAt returns the label of voxel (i, j, k), 0 outside.
func (s *Session) LabelAt(p [3]int) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lm.Contains(p[0], p[1], p[2]) {
		return 0
	}
	return s.lm.Data[s.lm.Index(p[0], p[1], p[2])]
}

// --- undo / redo ---

// CanUndo / CanRedo report whether there is a step to undo / redo.
func (s *Session) CanUndo() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.hist.pos > 0 }
func (s *Session) CanRedo() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hist.pos < len(s.hist.cmds)
}

// Undo reverts the last step; it returns its name ("" when there was none).
func (s *Session) Undo() string { return s.step(false) }

// Redo re-applies the next step.
func (s *Session) Redo() string { return s.step(true) }

func (s *Session) step(redo bool) string {
	s.mu.Lock()
	s.endStrokeLocked()
	var c *command
	if redo {
		if s.hist.pos >= len(s.hist.cmds) {
			s.mu.Unlock()
			return ""
		}
		c = s.hist.cmds[s.hist.pos]
		s.hist.pos++
	} else {
		if s.hist.pos == 0 {
			s.mu.Unlock()
			return ""
		}
		s.hist.pos--
		c = s.hist.cmds[s.hist.pos]
	}
	ch := ChangeHistory
	if c.delta != nil {
		c.delta.apply(s.lm, s.counts, redo)
		s.dirty++
		ch |= ChangeLabels
	}
	if c.promptsBefore != nil {
		if redo {
			s.putPrompts(c.key, c.promptsAfter.clone())
		} else {
			s.putPrompts(c.key, c.promptsBefore.clone())
		}
		ch |= ChangePrompts | ChangePreview
	}
	if c.record != nil {
		if redo {
			s.records = append(s.records, *c.record)
		} else if len(s.records) > 0 {
			s.records = s.records[:len(s.records)-1]
		}
	}
	s.mu.Unlock()
	s.notify(ch)
	return c.name
}

// HistoryBytes is the memory held by the undo history.
func (s *Session) HistoryBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hist.bytes
}

// HistoryLen is the number of steps held (undoable + redoable).
func (s *Session) HistoryLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hist.cmds)
}

// SetHistoryLimit bounds the history's memory; the oldest steps are dropped first.
func (s *Session) SetHistoryLimit(bytes int) {
	s.mu.Lock()
	s.hist.limitBytes = bytes
	s.hist.trim()
	s.mu.Unlock()
}
