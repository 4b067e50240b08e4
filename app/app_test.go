package app

import (
	"os"
	"path/filepath"
	"slices"
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
)

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
func newUI(t *testing.T, withModel bool) *UI {
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
	opt := Options{ModelDir: filepath.Join(root, "testdata/tinymodel"), RecoveryDir: t.TempDir(), Autosave: time.Hour, Device: "cpu"}
	if !withModel {
		opt.ModelDir = filepath.Join(t.TempDir(), "none")
	}
	u := New(a, opt)
	u.logf = t.Logf
	u.W.Resize(fyne.NewSize(1200, 800))
	u.openEngine()
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
	if got := u.W.Title(); got != "medsa — "+studyName(vol, path) {
		t.Errorf("title %q", got)
	}
	sv := d.view
	k := sv.Key()
	W, H := d.sess.SliceSize(k.Plane)
	press(sv, sv.ToScreen(W/2, H/2), desktop.MouseButtonPrimary)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.sess.Preview(); return m != nil })
	_, m, sel, n, _ := d.sess.Preview()
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
		if _, _, s2, _, _ := d.sess.Preview(); s2 == sel {
			t.Error("Tab did not cycle")
		}
	}
	sv.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	axis := vol.Affine.PlaneAxis(k.Plane, vol.Size)
	ua, va := volume.SliceAxes(axis)
	var vox [3]int
	vox[axis], vox[ua], vox[va] = k.Index, W/2, H/2
	if d.sess.LabelAt(vox) != 1 {
		t.Fatal("Enter did not accept the mask")
	}
	if !u.dirty() || u.W.Title()[len(u.W.Title())-1] != '*' {
		t.Error("unsaved changes not shown")
	}
	accepted := slices.Clone(d.sess.LabelMap().Data)
	u.Undo()
	if d.sess.LabelAt(vox) != 0 {
		t.Error("undo kept the mask")
	}
	// Undoing the accept brings the prompts back and re-asks the model.
	waitFor(t, "the preview again", func() bool { _, m, _, _, _ := d.sess.Preview(); return m != nil })
	u.Redo()
	if !slices.Equal(accepted, d.sess.LabelMap().Data) {
		t.Fatal("redo differs from the accepted mask")
	}

	// Brush and eraser through the tool selector.
	u.toolSel.SetSelected("brush")
	if d.ctrl.Tool != interaction.ToolBrush {
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
	waitFor(t, "the reopened mask", func() bool { return u2.doc.sess.VoxelCount(1) > 0 && len(u2.doc.sess.Records()) > 0 })
	if !slices.Equal(accepted, u2.doc.sess.LabelMap().Data) {
		t.Error("reopened mask differs")
	}
	if r := u2.doc.sess.Records(); len(r) != 1 || len(r[0].Points) != 1 || r[0].Model == "" {
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
	if u.doc.ctrl.Tool != interaction.ToolBrush {
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
	if u.doc.sess.VoxelCount(1) == 0 {
		t.Error("brush painted nothing")
	}
	u.onKey(&fyne.KeyEvent{Name: fyne.KeyEscape}) // clears the point prompt
	if p, _ := u.doc.sess.Prompts(sv.Key()); !p.Empty() {
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
	want := slices.Clone(u.doc.sess.LabelMap().Data)
	rec, _ := recoveryPaths(u.opt.RecoveryDir, path)
	waitFor(t, "the recovery file", func() bool { _, err := os.Stat(rec); return err == nil })

	// "After a crash": a new window on the same image offers the recovery.
	u2 := newUI(t, false)
	u2.opt.RecoveryDir = u.opt.RecoveryDir
	u2.OpenVolume(vol, path)
	u2.offerRecovery()
	yes := findButton(u2.W.Canvas().Overlays().Top(), "Yes")
	if yes == nil {
		t.Fatal("no recovery dialog")
	}
	test.Tap(yes)
	waitFor(t, "the recovered labels", func() bool { return u2.doc.sess.VoxelCount(1) > 0 })
	if !slices.Equal(want, u2.doc.sess.LabelMap().Data) {
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
	W, H := d.sess.SliceSize(k.Plane)
	press(sv, sv.ToScreen(W/2, H/2), desktop.MouseButtonPrimary)
	waitFor(t, "a preview mask", func() bool { _, m, _, _, _ := d.sess.Preview(); return m != nil })
	before := d.sess.Generation()
	u.PropagateRange(5) // accepts the preview, then propagates 5 slices both ways
	waitFor(t, "propagation", func() bool {
		return len(d.sess.Records()) >= 2 || d.sess.Generation() > before+1 && u.message.Text != ""
	})
	recs := d.sess.Records()
	if len(recs) < 2 || recs[len(recs)-1].ToSlice == nil {
		t.Fatalf("records %+v, message %q", recs, u.message.Text)
	}
	// More than one slice carries the label now, and it is one undo step.
	slicesWith := map[int]bool{}
	nx, ny := vol.Size[0], vol.Size[1]
	for o, l := range d.sess.LabelMap().Data {
		if l == 1 {
			slicesWith[o/(nx*ny)] = true
		}
	}
	if len(slicesWith) < 2 || len(slicesWith) > 11 {
		t.Errorf("propagation labelled %d slices", len(slicesWith))
	}
	u.Undo()
	n := 0
	for o, l := range d.sess.LabelMap().Data {
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
	if d.cross != [3]int{70, 90, ax.Key().Index} {
		t.Errorf("crosshair %v", d.cross)
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
	if d.view != sa || d.cross[0] != 73 {
		t.Errorf("active %v cross %v", d.view == sa, d.cross)
	}
	u.SetLayout(false)
	if len(d.views) != 1 || d.view != ax {
		t.Error("back to one view")
	}
}
