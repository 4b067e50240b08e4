package workspace

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model"
)

// fakeEngine answers prompts with a disc around the first point and
// propagates by copying the seed; gates let a test hold either.
type fakeEngine struct {
	man *model.Manifest

	segGate    chan struct{} // non-nil: Segment waits for it (or its context)
	earlyFirst bool          // SegmentEarly hands over a first answer
	propGate   chan struct{} // non-nil: each propagated slice waits for it (or the context)

	mu      sync.Mutex
	dropped []string
	segs    int
}

func newFake() *fakeEngine {
	return &fakeEngine{man: &model.Manifest{Name: "fake", Version: "1", LowResMaskSize: 4}}
}

func (f *fakeEngine) Manifest() *model.Manifest { return f.man }

// SegmentEarly: with earlyFirst, a first answer (an empty mask) is handed
// to early before the gate, as the engine does before a crop encode.
func (f *fakeEngine) SegmentEarly(ctx context.Context, ref model.SliceRef, p model.Prompt, early func(*model.Result)) (*model.Result, error) {
	if f.earlyFirst && early != nil {
		ua, va := volume.SliceAxes(ref.Vol.Affine.PlaneAxis(ref.Plane, ref.Vol.Size))
		w, h := ref.Vol.Size[ua], ref.Vol.Size[va]
		early(&model.Result{W: w, H: h, Masks: [][]uint8{make([]uint8, w*h)}, Areas: []int{0}, Scores: []float32{0.1}, LowRes: [][]float32{make([]float32, 16)}})
	}
	return f.Segment(ctx, ref, p)
}

func (f *fakeEngine) Segment(ctx context.Context, ref model.SliceRef, p model.Prompt) (*model.Result, error) {
	f.mu.Lock()
	f.segs++
	f.mu.Unlock()
	if f.segGate != nil {
		select {
		case <-f.segGate:
			if ctx.Err() != nil { // cancelled meanwhile: the token is for the live call
				f.segGate <- struct{}{}
				return nil, ctx.Err()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ua, va := volume.SliceAxes(ref.Vol.Affine.PlaneAxis(ref.Plane, ref.Vol.Size))
	w, h := ref.Vol.Size[ua], ref.Vol.Size[va]
	m := make([]uint8, w*h)
	n := 0
	if len(p.Points) > 0 {
		c := p.Points[0]
		for v := 0; v < h; v++ {
			for u := 0; u < w; u++ {
				if math.Hypot(float64(u)-c.U, float64(v)-c.V) <= 3 {
					m[u+w*v] = 1
					n++
				}
			}
		}
	}
	return &model.Result{W: w, H: h, Masks: [][]uint8{m}, Areas: []int{n}, Scores: []float32{0.9}, LowRes: [][]float32{make([]float32, 16)}}, nil
}

func (f *fakeEngine) PropagateStats(ctx context.Context, ref model.SliceRef, seed []uint8, to int, progress func(done, total int)) (map[int][]uint8, model.PropagateStats, error) {
	out := map[int][]uint8{}
	gate := f.propGate
	dir := 1
	if to < ref.Index {
		dir = -1
	}
	total := (to - ref.Index) * dir
	for i := ref.Index + dir; i*dir <= to*dir; i += dir {
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return out, model.PropagateStats{Reason: "cancelled"}, ctx.Err()
			}
		}
		out[i] = append([]uint8(nil), seed...)
		if progress != nil {
			progress(len(out), total)
		}
	}
	return out, model.PropagateStats{Slices: len(out), StoppedAt: to, Reason: "range end"}, nil
}

func (f *fakeEngine) PrefetchNeighbours(model.SliceRef, int, int) {}
func (f *fakeEngine) Ready(model.SliceRef) bool                   { return true }
func (f *fakeEngine) Pending() int                                { return 0 }
func (f *fakeEngine) DropVolume(id string) {
	f.mu.Lock()
	f.dropped = append(f.dropped, id)
	f.mu.Unlock()
}

// harness runs posted functions on one goroutine (the "UI") and collects events.
type harness struct {
	ui     sync.Mutex // held while a posted function runs: a test holding it acts "on the UI goroutine"
	t      *testing.T
	w      *Workspace
	posts  chan func()
	events chan Event
}

func newHarness(t *testing.T, recoveryDir string) *harness {
	h := &harness{t: t, posts: make(chan func(), 1024), events: make(chan Event, 1024)}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case f := <-h.posts:
				h.ui.Lock()
				f()
				h.ui.Unlock()
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	h.w = New(Options{RecoveryDir: recoveryDir, Post: func(f func()) { h.posts <- f }, OnEvent: func(ev Event) { h.events <- ev }})
	return h
}

// wait returns the next event of type T, failing after a while; other events are skipped.
func wait[T Event](h *harness) T {
	h.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if e, ok := ev.(T); ok {
				return e
			}
		case <-timeout:
			var zero T
			h.t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

// none fails when an event of type T arrives within d.
func none[T Event](h *harness, d time.Duration) {
	h.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-h.events:
			if _, ok := ev.(T); ok {
				h.t.Fatalf("unexpected %T: %+v", ev, ev)
			}
		case <-timeout:
			return
		}
	}
}

func testVolume() *volume.Volume {
	v := &volume.Volume{Size: [3]int{32, 24, 12}, Channels: 1, Affine: volume.Identity(), Modality: "CT", Window: [2]float64{40, 400}}
	v.Data = make([]float32, 32*24*12)
	return v
}

func TestLabelEditsUnsavedAndAutosaved(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *interaction.Session)
	}{
		{"rename", func(s *interaction.Session) { s.RenameLabel(1, "liver") }},
		{"colour", func(s *interaction.Session) { s.SetLabelColor(1, [3]uint8{9, 9, 9}) }},
		{"add", func(s *interaction.Session) { s.AddLabel("") }},
	}
	for _, c := range cases {
		h := newHarness(t, t.TempDir())
		quit := make(chan struct{})
		go h.w.RunAutosave(quit, time.Hour) // only kicks write
		d := h.w.OpenVolume(testVolume(), "/data/ct.nii.gz")
		if d.Dirty() {
			t.Fatalf("%s: a new document is unsaved", c.name)
		}
		c.edit(d.Sess)
		if !d.Dirty() {
			t.Errorf("%s: not unsaved", c.name)
		}
		ev := wait[Autosaved](h)
		close(quit)
		if ev.Err != nil {
			t.Fatalf("%s: %v", c.name, ev.Err)
		}
		_, table, _, err := LoadMask(ev.Path, d.Vol)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := d.Sess.Labels(); len(table) != len(want) || table[0].Name != want[0].Name || table[0].Color != want[0].Color {
			t.Errorf("%s: recovery file labels %+v, session %+v", c.name, table, want)
		}
		// Nothing new: a second autosave writes nothing.
		if wrote, err := h.w.Autosave(); wrote || err != nil {
			t.Errorf("%s: second autosave wrote %v, %v", c.name, wrote, err)
		}
	}
}

// seedSlice puts an accepted mask of label 1 on slice k through the fake model.
func seedSlice(t *testing.T, h *harness, d *Doc, k interaction.SliceKey) {
	t.Helper()
	if err := d.Sess.AddPoint(k, 10, 10, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.w.Segment(d, k, time.Time{}); !ok {
		t.Fatal("nothing asked")
	}
	wait[MaskInstalled](h)
	if err := h.w.Accept(d); err != nil {
		t.Fatal(err)
	}
}

func TestPropagateOneAtATimeIntoItsLabel(t *testing.T) {
	h := newHarness(t, "")
	e := newFake()
	h.w.SetEngine(e, nil)
	d := h.w.OpenVolume(testVolume(), "ct")
	k := d.Active().Key()
	seedSlice(t, h, d, k)
	e.propGate = make(chan struct{})
	st, err := h.w.Propagate(d, k, 2)
	if err != nil || st.Label != 1 || st.Lo != k.Index-2 || st.Hi != k.Index+2 {
		t.Fatalf("started %+v, %v", st, err)
	}
	if _, err := h.w.Propagate(d, k, 2); !errors.Is(err, ErrPropagating) {
		t.Fatalf("second propagation: %v", err)
	}
	d.Sess.AddLabel("other") // label 2 is active while it runs
	close(e.propGate)
	done := wait[PropagateDone](h)
	if done.Err != nil || done.Slices != 4 || done.Cancelled {
		t.Fatalf("done %+v", done)
	}
	if d.Sess.VoxelCount(2) != 0 || d.Propagating() {
		t.Errorf("label 2 has %d voxels; still propagating %v", d.Sess.VoxelCount(2), d.Propagating())
	}
	recs := d.Sess.Records()
	if len(recs) != 2 || recs[1].Label != 1 || recs[1].ToSlice == nil {
		t.Errorf("records %+v", recs)
	}
	// Once it ended, the next one may start.
	e.propGate = nil
	d.Sess.SetActive(1)
	if _, err := h.w.Propagate(d, k, 1); err != nil {
		t.Errorf("a propagation after the first: %v", err)
	}
	wait[PropagateDone](h)
}

func TestCancelPropagateKeepsWhatWasDone(t *testing.T) {
	h := newHarness(t, "")
	e := newFake()
	h.w.SetEngine(e, nil)
	d := h.w.OpenVolume(testVolume(), "ct")
	k := d.Active().Key()
	seedSlice(t, h, d, k)
	e.propGate = make(chan struct{})
	if _, err := h.w.Propagate(d, k, 0); err != nil {
		t.Fatal(err)
	}
	e.propGate <- struct{}{} // one slice, then cancel
	wait[PropagateProgress](h)
	d.CancelPropagate()
	done := wait[PropagateDone](h)
	if !done.Cancelled || done.Err != nil || done.Slices != 1 {
		t.Fatalf("done %+v", done)
	}
}

func TestStaleAnswersDropped(t *testing.T) {
	h := newHarness(t, "")
	e := newFake()
	e.segGate = make(chan struct{}, 4)
	h.w.SetEngine(e, nil)
	d := h.w.OpenVolume(testVolume(), "ct")
	k := d.Active().Key()
	// A newer prompt cancels the answer to the older one.
	d.Sess.AddPoint(k, 5, 5, true)
	h.w.Segment(d, k, time.Time{})
	d.Sess.AddPoint(k, 20, 15, true)
	h.w.Segment(d, k, time.Time{})
	e.segGate <- struct{}{}
	ev := wait[MaskInstalled](h)
	if p, _ := d.Sess.Prompts(k); len(p.Points) != 2 || ev.Key != k {
		t.Fatalf("installed %+v for prompts %+v", ev, p)
	}
	none[MaskInstalled](h, 100*time.Millisecond)
	// Prompts changed behind the model's back (an undo): its answer is dropped.
	d.Sess.AddPoint(k, 7, 7, false)
	h.w.Segment(d, k, time.Time{})
	d.Sess.Undo()
	e.segGate <- struct{}{}
	none[MaskInstalled](h, 200*time.Millisecond)
	if _, m, _, _, _ := d.Sess.Preview(); m != nil {
		t.Error("a stale answer became the preview")
	}
}

// TestEarlyAnswerThenFinal: the engine's early answer becomes the preview at
// once and the final answer replaces it; a final answer to prompts that
// changed meanwhile is dropped.
func TestEarlyAnswerThenFinal(t *testing.T) {
	h := newHarness(t, "")
	e := newFake()
	e.segGate = make(chan struct{}, 4)
	e.earlyFirst = true
	h.w.SetEngine(e, nil)
	d := h.w.OpenVolume(testVolume(), "ct")
	k := d.Active().Key()
	d.Sess.AddPoint(k, 5, 5, true)
	h.w.Segment(d, k, time.Time{})
	area := func() int {
		h.ui.Lock()
		defer h.ui.Unlock()
		_, m, _, _, _ := d.Sess.Preview()
		if m == nil {
			return -1
		}
		n := 0
		for _, x := range m {
			n += int(x)
		}
		return n
	}
	if ev := wait[MaskInstalled](h); !ev.Early {
		t.Fatalf("first install %+v: want the early answer", ev)
	}
	if a := area(); a != 0 {
		t.Fatalf("preview area %d after the early answer, want its empty mask", a)
	}
	e.segGate <- struct{}{}
	if ev := wait[MaskInstalled](h); ev.Early {
		t.Fatal("second install is early again")
	}
	if a := area(); a <= 0 {
		t.Fatalf("preview area %d after the final answer", a)
	}
	// A new point while the final answer is computed: that answer is stale.
	h.ui.Lock()
	d.Sess.AddPoint(k, 8, 8, true)
	h.ui.Unlock()
	h.w.Segment(d, k, time.Time{})
	if ev := wait[MaskInstalled](h); !ev.Early {
		t.Fatal("want the early answer to the new prompts")
	}
	h.ui.Lock()
	d.Sess.AddPoint(k, 12, 9, false)
	h.ui.Unlock()
	e.segGate <- struct{}{}
	none[MaskInstalled](h, 200*time.Millisecond)
	if a := area(); a > 0 {
		t.Errorf("preview area %d: a stale final answer was installed", a)
	}
}

func TestLatencyFromPointerDown(t *testing.T) {
	cases := []struct {
		name    string
		ago     time.Duration
		atLeast time.Duration
		below   time.Duration
	}{
		{"held button", 300 * time.Millisecond, 300 * time.Millisecond, 5 * time.Second},
		{"no click", 0, 0, time.Second},
		{"stale click", time.Minute, 0, time.Second},
	}
	for _, c := range cases {
		h := newHarness(t, "")
		h.w.SetEngine(newFake(), nil)
		d := h.w.OpenVolume(testVolume(), "ct")
		k := d.Active().Key()
		d.Sess.AddPoint(k, 5, 5, true)
		var down time.Time
		if c.ago > 0 {
			down = time.Now().Add(-c.ago)
		}
		t0, ok := h.w.Segment(d, k, down)
		ev := wait[MaskInstalled](h)
		if !ok || ev.Latency < c.atLeast || ev.Latency >= c.below {
			t.Errorf("%s: latency %v (clock from %v), want %v..%v", c.name, ev.Latency, t0, c.atLeast, c.below)
		}
	}
}

func TestNoModelAndModelLoading(t *testing.T) {
	h := newHarness(t, "")
	d := h.w.OpenVolume(testVolume(), "ct")
	k := d.Active().Key()
	d.Sess.AddPoint(k, 5, 5, true)
	h.w.Segment(d, k, time.Time{})
	if ev := wait[SegmentFailed](h); !errors.Is(ev.Err, ErrModelLoading) {
		t.Errorf("while loading: %v", ev.Err)
	}
	h.w.SetEngine(nil, errors.New("no manifest"))
	h.w.Segment(d, k, time.Time{})
	if ev := wait[SegmentFailed](h); errors.Is(ev.Err, ErrModelLoading) || ev.Err == nil {
		t.Errorf("without a model: %v", ev.Err)
	}
	if _, err := h.w.Propagate(d, k, 1); err == nil {
		t.Error("propagation without a model")
	}
}

func TestOpenAndCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ct.nii.gz")
	if err := nifti.WriteVolume(path, testVolume()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "")
	e := newFake()
	h.w.SetEngine(e, nil)
	h.w.Open(path, "")
	op := wait[Opened](h)
	if op.Doc.Vol.Size != testVolume().Size || h.w.Doc() != op.Doc {
		t.Fatalf("opened %v", op.Doc.Vol.Size)
	}
	first := op.Doc

	h.ui.Lock() // the read's result cannot be applied before the cancel, as on the UI goroutine
	cancel := h.w.Open(path, "")
	time.Sleep(50 * time.Millisecond) // the read ends meanwhile
	cancel()
	h.ui.Unlock()
	wait[OpenCancelled](h)
	none[Opened](h, 300*time.Millisecond)
	if h.w.Doc() != first {
		t.Error("a cancelled open replaced the document")
	}

	h.w.Open(filepath.Join(t.TempDir(), "missing.nii"), "")
	if ev := wait[OpenFailed](h); ev.Err == nil {
		t.Error("no error opening a missing file")
	}
	// A second open replaces the first: the old document's embeddings are dropped.
	h.w.Open(path, "")
	wait[Opened](h)
	e.mu.Lock()
	dropped := append([]string(nil), e.dropped...)
	e.mu.Unlock()
	if len(dropped) != 1 || dropped[0] != first.VolID {
		t.Errorf("dropped %v, want [%s]", dropped, first.VolID)
	}
}

// TestCancelStopsTheRead: cancelling an open cancels the reader's context (the
// readers stop on it: io/load's TestOpenCancelled), so a long local read does
// not run on after the user gave up on it.
func TestCancelStopsTheRead(t *testing.T) {
	stopped := make(chan error, 1)
	started := make(chan struct{})
	old := loadOpen
	loadOpen = func(path string, opt load.Options) (*volume.Volume, error) {
		close(started)
		<-opt.Context.Done() // a read that would go on for ever
		stopped <- opt.Context.Err()
		return nil, opt.Context.Err()
	}
	t.Cleanup(func() { loadOpen = old })
	h := newHarness(t, "")
	cancel := h.w.Open("/data/huge.nii.gz", "")
	<-started
	cancel()
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the reader stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not reach the reader")
	}
	wait[OpenCancelled](h)
	none[OpenFailed](h, 200*time.Millisecond) // the read's error after a cancel is not news
}

// TestCLIMaskReopensWithRecords: a mask whose sidecar `medsa segment` wrote
// (workspace.Meta, Tool "medsa segment") opens with its records and as saved.
func TestCLIMaskReopensWithRecords(t *testing.T) {
	vol := testVolume()
	lm := volume.NewLabelMap(vol)
	lm.Data[100] = 1
	to := 3
	meta := &Meta{Tool: "medsa segment", Source: "ct", Model: "fake@1", Segment: &SegmentRun{Propagate: true, Scores: []float32{0.9}},
		Masks: []interaction.MaskRecord{{Label: 1, Plane: "axial", Slice: 6, Points: []interaction.Point{{U: 4, V: 3, Positive: true}}, Model: "fake@1"},
			{Label: 1, Plane: "axial", Slice: 6, ToSlice: &to, Candidate: -1, Model: "fake@1"}}}
	out := filepath.Join(t.TempDir(), "seg.nii.gz")
	if err := SaveMask(out, lm, []volume.Label{{Value: 1, Name: "segment"}}, meta, nil); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "")
	d := h.w.OpenVolume(vol, "ct")
	h.w.OpenMask(d, out)
	if ev := wait[MaskLoaded](h); ev.Err != nil {
		t.Fatal(ev.Err)
	}
	recs := d.Sess.Records()
	if len(recs) != 2 || recs[1].ToSlice == nil || *recs[1].ToSlice != 3 || len(recs[0].Points) != 1 {
		t.Errorf("records %+v", recs)
	}
	if d.Dirty() || d.SavePath() != out {
		t.Errorf("dirty %v, save path %q", d.Dirty(), d.SavePath())
	}
	if l, _ := d.Sess.Label(1); l.Name != "segment" {
		t.Errorf("label %+v", l)
	}
}

func TestSaveMarksSavedAndRemovesRecovery(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.w.SetEngine(newFake(), nil)
	d := h.w.OpenVolume(testVolume(), "ct")
	seedSlice(t, h, d, d.Active().Key())
	if wrote, err := h.w.Autosave(); !wrote || err != nil {
		t.Fatalf("autosave %v %v", wrote, err)
	}
	rec, _, ok := h.w.Recovery(d)
	if !ok {
		t.Fatal("no recovery file")
	}
	out := filepath.Join(t.TempDir(), "m.nii.gz")
	h.w.Save(d, out, nil)
	if ev := wait[Saved](h); ev.Err != nil || ev.Export {
		t.Fatalf("saved %+v", ev)
	}
	if d.Dirty() {
		t.Error("unsaved after a save")
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("recovery file left: %v", err)
	}
	m, err := ReadMeta(out)
	if err != nil || m.Tool != "medsa" || len(m.Masks) != 1 || m.Model != "fake@1" {
		t.Errorf("meta %+v %v", m, err)
	}
	// Recovery after a "crash": a fresh workspace on the same image.
	if wrote, err := h.w.Autosave(); wrote || err != nil {
		t.Errorf("autosave right after a save wrote %v %v", wrote, err)
	}
}

func TestCrosshairLinksThreeViews(t *testing.T) {
	w := New(Options{})
	d := w.OpenVolume(testVolume(), "ct")
	if _, err := d.SetQuad(true); err != nil {
		t.Fatal(err)
	}
	views := d.Views()
	if len(views) != 3 || views[1].Plane() != volume.Coronal || views[2].Plane() != volume.Sagittal {
		t.Fatalf("views %d", len(views))
	}
	ax, co, sa := views[0], views[1], views[2]
	cases := []struct {
		from  *View
		cross [3]int
	}{
		{ax, [3]int{7, 9, ax.Key().Index}},
		{co, [3]int{20, 9, 3}},
		{sa, [3]int{20, 15, 8}},
	}
	for _, c := range cases {
		moved := d.SetCross(c.from, c.cross)
		if d.Cross() != c.cross {
			t.Errorf("cross %v, want %v", d.Cross(), c.cross)
		}
		for _, v := range views {
			if v == c.from {
				continue
			}
			if got := v.Key().Index; got != c.cross[v.Axis(v.Plane())] {
				t.Errorf("%s view at %d, want %d", v.Plane(), got, c.cross[v.Axis(v.Plane())])
			}
		}
		for _, v := range moved {
			if v == c.from {
				t.Error("the source view moved")
			}
		}
	}
	// Scrolling one view moves the crosshair along its axis.
	sa.SetIndex(4)
	d.Scrolled(sa, sa.Key())
	if d.Cross()[0] != 4 {
		t.Errorf("cross %v after scrolling sagittal to 4", d.Cross())
	}
	// One window for all views.
	if changed := d.ShareWindow([2]float64{400, 1800}); len(changed) != 3 || co.Window() != [2]float64{400, 1800} {
		t.Errorf("shared window: %d changed", len(changed))
	}
	if _, err := d.SetQuad(false); err != nil || len(d.Views()) != 1 || d.Active() != ax {
		t.Error("back to one view")
	}
	flat := &volume.Volume{Size: [3]int{8, 8, 1}, Channels: 1, Affine: volume.Identity(), Data: make([]float32, 64)}
	if _, err := w.OpenVolume(flat, "x.png").SetQuad(true); err == nil {
		t.Error("three views of a 2D image")
	}
}
