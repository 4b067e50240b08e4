package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/viewer"
	"github.com/medsa/medsa/workspace"
)

// testQueue stands for the UI goroutine: what the app hands to fyne.Do runs
// on the test's goroutine when waitFor (or drain) empties it, as the real
// driver runs it on its main goroutine. That keeps the race detector's view
// of the widgets true.
var testQueue = make(chan func(), 1<<16)

func drain() {
	for {
		select {
		case f := <-testQueue:
			f()
		default:
			return
		}
	}
}

func labelData(s *interaction.Session) []uint16 { lm, _, _, _ := s.SnapshotLabels(); return lm.Data }

func repoRoot(t testing.TB) string { return td.Root(t) }

// realCT loads the derived head CT (a real scan written as a DICOM series).
func realCT(t *testing.T) (*volume.Volume, string) {
	root := repoRoot(t)
	p := filepath.Join(root, ".cache/testdata/derived/dicom/axial")
	td.Need(t, p, "derived head CT series")
	v, err := load.Open(p, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v, p
}

// newUI builds the window on the test driver with the tiny test model.
func newUI(t *testing.T, withModel bool) *UI { return newUIIn(t, withModel, t.TempDir()) }

// newUIIn is newUI autosaving into recoveryDir.
func newUIIn(t *testing.T, withModel bool, recoveryDir string) *UI {
	t.Helper()
	a := test.NewTempApp(t)
	root := repoRoot(t)
	if withModel {
		lib := os.Getenv("MEDSA_ORT_LIB")
		if lib == "" {
			lib = filepath.Join(root, ".cache/ort/libonnxruntime.so.1")
		}
		td.Need(t, lib, "onnxruntime (make setup)")
		t.Setenv("MEDSA_ORT_LIB", lib)
	}
	opt := Options{ModelDir: filepath.Join(root, "testdata/tinymodel"), RecoveryDir: recoveryDir, Autosave: time.Hour, Device: "cpu"}
	if !withModel {
		opt.ModelDir = filepath.Join(t.TempDir(), "none")
	}
	u := New(a, opt)
	u.logf = t.Logf
	u.do = func(f func()) { testQueue <- f }
	u.doAndWait = func(f func()) {
		done := make(chan struct{})
		testQueue <- func() { f(); close(done) }
		<-done
	}
	u.W.Resize(fyne.NewSize(1200, 800))
	u.openEngine()
	drain()
	t.Cleanup(func() {
		select {
		case <-u.quit:
		default:
			u.shutdown()
		}
	})
	return u
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		drain()
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func press(sv *viewer.SliceView, pos fyne.Position, b desktop.MouseButton) {
	ev := &desktop.MouseEvent{Button: b}
	ev.Position = pos
	sv.MouseDown(ev)
	sv.MouseUp(ev)
}

// TestClickAcceptSaveReopen is the user's path on a real CT with the tiny
// model: click -> preview mask, Tab, Enter, undo/redo, save, reopen -> same mask.
func TestClickAcceptSaveReopen(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, true)
	if e, err := u.engine(); e == nil {
		t.Fatalf("engine: %v", err)
	}
	u.OpenVolume(vol, path)
	d := u.doc
	if got := u.W.Title(); got != "medsa — "+d.Name() {
		t.Errorf("title %q", got)
	}
	sv := d.view
	k := sv.Key()
	W, H := d.Sess.SliceSize(k.Plane)
	press(sv, sv.ToScreen(W/2, H/2), desktop.MouseButtonPrimary)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.Sess.Preview(); return m != nil })
	_, m, sel, n, _ := d.Sess.Preview()
	if n < 1 || m[W/2+W*(H/2)] == 0 {
		t.Fatalf("preview of %d candidates does not hold the clicked pixel", n)
	}
	if u.candStatus.Text == "" {
		t.Error("status bar shows no candidate")
	}
	u.W.Canvas().Capture() // paint: the frame that shows the mask stops the click->mask clock
	waitFor(t, "the latency readout", func() bool { return u.latency.Text != "" })
	if n > 1 {
		u.onKey(&fyne.KeyEvent{Name: fyne.KeyTab})
		if _, _, s2, _, _ := d.Sess.Preview(); s2 == sel {
			t.Error("Tab did not cycle")
		}
	}
	sv.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	axis := vol.Affine.PlaneAxis(k.Plane, vol.Size)
	ua, va := volume.SliceAxes(axis)
	var vox [3]int
	vox[axis], vox[ua], vox[va] = k.Index, W/2, H/2
	if d.Sess.LabelAt(vox) != 1 {
		t.Fatal("Enter did not accept the mask")
	}
	if !u.dirty() || u.W.Title()[len(u.W.Title())-1] != '*' {
		t.Error("unsaved changes not shown")
	}
	accepted := slices.Clone(labelData(d.Sess))
	u.Undo()
	if d.Sess.LabelAt(vox) != 0 {
		t.Error("undo kept the mask")
	}
	// Undoing the accept brings the prompts back and re-asks the model.
	waitFor(t, "the preview again", func() bool { _, m, _, _, _ := d.Sess.Preview(); return m != nil })
	u.Redo()
	if !slices.Equal(accepted, labelData(d.Sess)) {
		t.Fatal("redo differs from the accepted mask")
	}

	// Brush and eraser through the tool selector.
	u.toolSel.SetSelected("brush")
	if d.ctrl.Tool() != interaction.ToolBrush {
		t.Fatal("tool selector")
	}

	out := filepath.Join(t.TempDir(), "m.nii.gz")
	u.saveTo(d, out, nil)
	waitFor(t, "the saved mask", func() bool { return !u.dirty() })
	if _, err := os.Stat(mask.SidecarPath(out)); err != nil {
		t.Fatal(err)
	}

	// Reopen in a fresh window: the same voxels, labels and records.
	u2 := newUI(t, false)
	u2.OpenVolume(vol, path)
	u2.OpenMask(out)
	waitFor(t, "the reopened mask", func() bool { return u2.doc.Sess.VoxelCount(1) > 0 && len(u2.doc.Sess.Records()) > 0 })
	if !slices.Equal(accepted, labelData(u2.doc.Sess)) {
		t.Error("reopened mask differs")
	}
	if r := u2.doc.Sess.Records(); len(r) != 1 || len(r[0].Points) != 1 || r[0].Model == "" {
		t.Errorf("records after reopen: %+v", r)
	}
	if u2.dirty() {
		t.Error("a freshly opened mask counts as unsaved")
	}
}

func TestNoModelStillEdits(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, false)
	if _, err := u.engine(); err == nil {
		t.Fatal("engine without a model directory")
	}
	if u.badge.Text != "no model" {
		t.Errorf("badge %q", u.badge.Text)
	}
	u.OpenVolume(vol, path)
	sv := u.doc.view
	press(sv, sv.ToScreen(100, 100), desktop.MouseButtonPrimary)
	if u.message.Text == "" {
		t.Error("no message when prompting without a model")
	}
	u.onKey(&fyne.KeyEvent{Name: fyne.KeyB})
	if u.doc.ctrl.Tool() != interaction.ToolBrush {
		t.Fatal("B did not select the brush")
	}
	d := &fyne.DragEvent{}
	ev := &desktop.MouseEvent{Button: desktop.MouseButtonPrimary}
	ev.Position = sv.ToScreen(50, 60)
	sv.MouseDown(ev)
	d.Position = sv.ToScreen(70, 60)
	sv.Dragged(d)
	ev.Position = d.Position
	sv.MouseUp(ev)
	if u.doc.Sess.VoxelCount(1) == 0 {
		t.Error("brush painted nothing")
	}
	u.onKey(&fyne.KeyEvent{Name: fyne.KeyEscape}) // clears the point prompt
	if p, _ := u.doc.Sess.Prompts(sv.Key()); !p.Empty() {
		t.Error("Esc kept the prompts")
	}
	// Presets change the window.
	u.presetSel.SetSelected(presets[2].name)
	if sv.Window() != presets[2].w {
		t.Errorf("bone preset: window %v", sv.Window())
	}
	u.planeSel.SetSelected("coronal")
	if sv.Plane() != volume.Coronal {
		t.Error("plane select")
	}
}

func TestAutosaveAndRecovery(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, false)
	u.opt.Autosave = 20 * time.Millisecond
	u.OpenVolume(vol, path)
	go u.autosaveLoop()
	sv := u.doc.view
	u.onKey(&fyne.KeyEvent{Name: fyne.KeyB})
	ev := &desktop.MouseEvent{Button: desktop.MouseButtonPrimary}
	ev.Position = sv.ToScreen(40, 40)
	sv.MouseDown(ev)
	sv.MouseUp(ev)
	want := slices.Clone(labelData(u.doc.Sess))
	rec, _ := workspace.RecoveryPaths(u.opt.RecoveryDir, path)
	waitFor(t, "the recovery file", func() bool { _, err := os.Stat(rec); return err == nil })

	// "After a crash": a new window on the same image offers the recovery.
	u2 := newUIIn(t, false, u.opt.RecoveryDir)
	u2.OpenVolume(vol, path)
	u2.offerRecovery()
	yes := findButton(u2.W.Canvas().Overlays().Top(), "Yes")
	if yes == nil {
		t.Fatal("no recovery dialog")
	}
	test.Tap(yes)
	waitFor(t, "the recovered labels", func() bool { return u2.doc.Sess.VoxelCount(1) > 0 })
	if !slices.Equal(want, labelData(u2.doc.Sess)) {
		t.Error("recovered labels differ")
	}
	// Saving removes the recovery file.
	u2.saveTo(u2.doc, filepath.Join(t.TempDir(), "x.nii.gz"), nil)
	waitFor(t, "recovery removed", func() bool { _, err := os.Stat(rec); return os.IsNotExist(err) })
}

func findButton(o fyne.CanvasObject, text string) *widget.Button {
	if o == nil {
		return nil
	}
	if b, ok := o.(*widget.Button); ok && b.Text == text {
		return b
	}
	var objs []fyne.CanvasObject
	switch x := o.(type) {
	case *fyne.Container:
		objs = x.Objects
	case fyne.Widget:
		objs = test.WidgetRenderer(x).Objects()
	}
	for _, c := range objs {
		if b := findButton(c, text); b != nil {
			return b
		}
	}
	return nil
}

func TestPropagateWithTinyModel(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, true)
	u.OpenVolume(vol, path)
	d := u.doc
	sv := d.view
	k := sv.Key()
	W, H := d.Sess.SliceSize(k.Plane)
	press(sv, sv.ToScreen(W/2, H/2), desktop.MouseButtonPrimary)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.Sess.Preview(); return m != nil })
	before := d.Sess.Generation()
	u.PropagateRange(5) // accepts the preview, then propagates 5 slices both ways
	waitFor(t, "propagation", func() bool {
		return len(d.Sess.Records()) >= 2 || d.Sess.Generation() > before+1 && u.message.Text != ""
	})
	recs := d.Sess.Records()
	if len(recs) < 2 || recs[len(recs)-1].ToSlice == nil {
		t.Fatalf("records %+v, message %q", recs, u.message.Text)
	}
	// More than one slice carries the label now, and it is one undo step.
	slicesWith := map[int]bool{}
	nx, ny := vol.Size[0], vol.Size[1]
	for o, l := range labelData(d.Sess) {
		if l == 1 {
			slicesWith[o/(nx*ny)] = true
		}
	}
	if len(slicesWith) < 2 || len(slicesWith) > 11 {
		t.Errorf("propagation labelled %d slices", len(slicesWith))
	}
	u.Undo()
	n := 0
	for o, l := range labelData(d.Sess) {
		if l == 1 && o/(nx*ny) != k.Index {
			n++
		}
	}
	if n != 0 {
		t.Errorf("undo of propagation left %d voxels", n)
	}
}

func TestQuadLayoutLinkedCrosshair(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, false)
	u.OpenVolume(vol, path)
	d := u.doc
	u.onKey(&fyne.KeyEvent{Name: fyne.KeyL})
	if len(d.views) != 3 {
		t.Fatalf("%d views in 2×2", len(d.views))
	}
	ax, co, sa := d.views[0], d.views[1], d.views[2]
	if co.Plane() != volume.Coronal || sa.Plane() != volume.Sagittal {
		t.Fatal("planes of the 2×2 views")
	}
	// A point on the axial view moves the crosshair; coronal and sagittal follow it.
	press(ax, ax.ToScreen(70, 90), desktop.MouseButtonPrimary)
	if d.Cross() != [3]int{70, 90, ax.Key().Index} {
		t.Errorf("crosshair %v", d.Cross())
	}
	if co.Key().Index != 90 || sa.Key().Index != 70 {
		t.Errorf("linked slices: coronal %d (want 90), sagittal %d (want 70)", co.Key().Index, sa.Key().Index)
	}
	if d.view != ax {
		t.Error("linking changed the active view")
	}
	// Window/level is shared.
	co.SetWindow([2]float64{400, 1800})
	if ax.Window() != co.Window() || sa.Window() != co.Window() {
		t.Error("window not shared")
	}
	// Scrolling the sagittal view makes it active and moves the crosshair along i.
	sa.Step(3)
	if d.view != sa || d.Cross()[0] != 73 {
		t.Errorf("active %v cross %v", d.view == sa, d.Cross())
	}
	u.SetLayout(false)
	if len(d.views) != 1 || d.view != ax {
		t.Error("back to one view")
	}
}

// TestLatencyFromPointerDown: the click→mask time runs from the pointer going
// down, not from the model call after the button came up.
func TestLatencyFromPointerDown(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, true)
	u.OpenVolume(vol, path)
	d := u.doc
	sv := d.view
	lat := make(chan time.Duration, 4)
	prev := sv.OnMaskPainted
	sv.OnMaskPainted = func(l time.Duration) { prev(l); lat <- l }
	k := sv.Key()
	W, H := d.Sess.SliceSize(k.Plane)
	ev := &desktop.MouseEvent{Button: desktop.MouseButtonPrimary}
	ev.Position = sv.ToScreen(W/2, H/2)
	const hold = 600 * time.Millisecond
	sv.MouseDown(ev)
	time.Sleep(hold) // the button held down: part of what the user waits for
	sv.MouseUp(ev)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.Sess.Preview(); return m != nil })
	u.W.Canvas().Capture()
	waitFor(t, "the painted mask", func() bool { return len(lat) > 0 })
	if l := <-lat; l < hold {
		t.Errorf("click→mask %v, shorter than the %v the button was held", l, hold)
	}
}

// TestPropagateOneAtATimeIntoItsLabel: a second Propagate while one runs is
// refused (the first keeps its cancel), and the masks go into the label the
// propagation started for, not the one active when it ends.
func TestPropagateOneAtATimeIntoItsLabel(t *testing.T) {
	vol, path := realCT(t)
	u := newUI(t, true)
	u.OpenVolume(vol, path)
	d := u.doc
	sv := d.view
	k := sv.Key()
	W, H := d.Sess.SliceSize(k.Plane)
	press(sv, sv.ToScreen(W/2, H/2), desktop.MouseButtonPrimary)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.Sess.Preview(); return m != nil })
	u.PropagateRange(0)
	u.PropagateRange(0) // while the first runs
	if !strings.Contains(u.message.Text, "already") {
		t.Errorf("second propagation: message %q", u.message.Text)
	}
	d.Sess.AddLabel("other") // label 2 is active while it runs
	waitFor(t, "the propagation", func() bool { return strings.Contains(u.message.Text, "slices") })
	time.Sleep(300 * time.Millisecond) // a second job, if one ran, ends too
	n := 0
	for _, r := range d.Sess.Records() {
		if r.ToSlice != nil {
			n++
			if r.Label != 1 {
				t.Errorf("propagation recorded into label %d", r.Label)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d propagations ran, want 1", n)
	}
	if c := d.Sess.VoxelCount(2); c != 0 {
		t.Errorf("label 2 (active when it finished) got %d voxels", c)
	}
}

// TestModelDirFromEnv: the GUI finds the model as the CLI does, through
// $MEDSA_MODEL_DIR; the old $MEDSA_MODEL still works.
func TestModelDirFromEnv(t *testing.T) {
	cases := []struct{ dirVar, oldVar, want string }{
		{"new-dir", "", "new-dir"},
		{"", "old-dir", "old-dir"},
		{"new-dir", "old-dir", "new-dir"},
	}
	for _, c := range cases {
		base := t.TempDir()
		set := func(k, v string) {
			if v != "" {
				v = filepath.Join(base, v)
			}
			t.Setenv(k, v)
		}
		set("MEDSA_MODEL_DIR", c.dirVar)
		set("MEDSA_MODEL", c.oldVar)
		u := New(test.NewTempApp(t), OptionsFromEnv(Options{RecoveryDir: t.TempDir()}))
		u.logf = t.Logf
		u.do = func(f func()) { testQueue <- f }
		u.openEngine()
		drain()
		if _, err := u.engine(); err == nil || !strings.Contains(err.Error(), filepath.Join(base, c.want)) {
			t.Errorf("MEDSA_MODEL_DIR=%q MEDSA_MODEL=%q: engine error %v, want one naming %s", c.dirVar, c.oldVar, err, c.want)
		}
		u.shutdown()
	}
}

// TestLabelEditsUnsavedAndAutosaved: renaming, recolouring or adding a label
// marks the mask unsaved and reaches the recovery file.
func TestLabelEditsUnsavedAndAutosaved(t *testing.T) {
	vol, path := realCT(t)
	cases := []struct {
		name string
		edit func(s *interaction.Session)
		want func(l []volume.Label) bool
	}{
		{"rename", func(s *interaction.Session) { s.RenameLabel(1, "liver") },
			func(l []volume.Label) bool { return len(l) > 0 && l[0].Name == "liver" }},
		{"colour", func(s *interaction.Session) { s.SetLabelColor(1, [3]uint8{1, 2, 3}) },
			func(l []volume.Label) bool { return len(l) > 0 && l[0].Color == [3]uint8{1, 2, 3} }},
		{"add", func(s *interaction.Session) { s.AddLabel("kidney") },
			func(l []volume.Label) bool { return len(l) == 2 && l[1].Name == "kidney" }},
	}
	for _, c := range cases {
		u := newUI(t, false)
		u.opt.Autosave = 20 * time.Millisecond
		u.OpenVolume(vol, path)
		go u.autosaveLoop()
		c.edit(u.doc.Sess)
		if !u.dirty() || !strings.HasSuffix(u.W.Title(), "*") {
			t.Errorf("%s: not shown as unsaved (title %q)", c.name, u.W.Title())
		}
		rec, _ := workspace.RecoveryPaths(u.opt.RecoveryDir, path)
		ok := false
		for i := 0; i < 200 && !ok; i++ {
			sc, err := mask.ReadSidecar(rec)
			ok = err == nil && sc != nil && c.want(sc.Labels)
			time.Sleep(10 * time.Millisecond)
		}
		if !ok {
			t.Errorf("%s: not autosaved to %s", c.name, rec)
		}
		u.shutdown()
	}
}

// TestOpenHasCancel: the open dialog has a Cancel button; a cancelled open
// leaves the window as it was, a second one opens.
func TestOpenHasCancel(t *testing.T) {
	_, path := realCT(t)
	u := newUI(t, false)
	u.Open(path, "")
	cancel := findButton(u.W.Canvas().Overlays().Top(), "Cancel")
	if cancel == nil {
		t.Fatal("no Cancel button while opening")
	}
	test.Tap(cancel) // before the read's result is applied (it waits for the UI goroutine: drain)
	waitFor(t, "the cancel", func() bool { return strings.Contains(u.message.Text, "cancelled") })
	time.Sleep(200 * time.Millisecond)
	drain()
	if u.doc != nil {
		t.Fatal("a cancelled open showed the study")
	}
	u.Open(path, "")
	waitFor(t, "the study", func() bool { return u.doc != nil })
	if u.W.Canvas().Overlays().Top() != nil {
		t.Error("the open dialog stayed")
	}
}
