package viewer

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/volume"
)

func testVolume(size [3]int, a volume.Affine) *volume.Volume {
	n := size[0] * size[1] * size[2]
	v := &volume.Volume{Size: size, Channels: 1, Data: make([]float32, n), Affine: a, Modality: "CT", Window: [2]float64{40, 400}}
	for i := range v.Data {
		v.Data[i] = float32(i % 97)
	}
	return v
}

func newView(t *testing.T, vol *volume.Volume) (*SliceView, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	s := interaction.NewSession(vol)
	sv := NewSliceView(s, interaction.NewController(s))
	sv.CtrlHeld = func() bool { return false }
	w := test.NewWindow(sv)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(400, 400))
	sv.Resize(fyne.NewSize(400, 400))
	t.Cleanup(w.Close)
	return sv, w
}

func click(sv *SliceView, pos fyne.Position, b desktop.MouseButton, mod fyne.KeyModifier) {
	ev := &desktop.MouseEvent{Button: b, Modifier: mod}
	ev.Position = pos
	sv.MouseDown(ev)
	sv.MouseUp(ev)
}

func drag(sv *SliceView, from, to fyne.Position) {
	ev := &desktop.MouseEvent{Button: desktop.MouseButtonPrimary}
	ev.Position = from
	sv.MouseDown(ev)
	for i := 1; i <= 4; i++ {
		f := float32(i) / 4
		p := fyne.NewPos(from.X+(to.X-from.X)*f, from.Y+(to.Y-from.Y)*f)
		d := &fyne.DragEvent{}
		d.Position = p
		sv.Dragged(d)
	}
	ev.Position = to
	sv.MouseUp(ev)
}

// TestClickMapsToVoxel checks that a click at the screen position of a voxel
// prompts that voxel, on anisotropic, oblique and non-axial data.
func TestClickMapsToVoxel(t *testing.T) {
	rot := 0.25
	cases := []struct {
		name  string
		size  [3]int
		a     volume.Affine
		plane volume.Plane
	}{
		{"lps anisotropic axial", [3]int{40, 30, 12}, volume.Affine{{-0.6, 0, 0, 10}, {0, -0.6, 0, 20}, {0, 0, 3, -5}, {0, 0, 0, 1}}, volume.Axial},
		{"ras coronal", [3]int{40, 30, 12}, volume.Affine{{0.8, 0, 0, 0}, {0, 1.2, 0, 0}, {0, 0, 2.5, 0}, {0, 0, 0, 1}}, volume.Coronal},
		{"lsa sagittal", [3]int{32, 20, 24}, volume.Affine{{-1, 0, 0, 0}, {0, 0, 1.5, 0}, {0, 0.9, 0, 0}, {0, 0, 0, 1}}, volume.Sagittal},
		{"oblique axial", [3]int{40, 30, 12}, volume.Affine{{math.Cos(rot), -math.Sin(rot), 0, 0}, {math.Sin(rot), math.Cos(rot), 0, 0}, {0, 0, 2, 0}, {0, 0, 0, 1}}, volume.Axial},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sv, _ := newView(t, testVolume(c.size, c.a))
			sv.SetPlane(c.plane)
			k := sv.Key()
			W, H := sv.Sess.SliceSize(c.plane)
			for _, uv := range [][2]int{{3, 4}, {W - 2, H - 3}, {W / 2, 1}} {
				pos := sv.ToScreen(uv[0], uv[1])
				r := sv.ReadoutAt(pos)
				if !r.Inside {
					t.Fatalf("voxel %v maps outside", uv)
				}
				vol := sv.Sess.Volume()
				axis := vol.Affine.PlaneAxis(c.plane, vol.Size)
				ua, va := volume.SliceAxes(axis)
				if r.Voxel[axis] != k.Index || r.Voxel[ua] != uv[0] || r.Voxel[va] != uv[1] {
					t.Errorf("slice pixel %v: readout voxel %v", uv, r.Voxel)
				}
				w := vol.Affine.Apply([3]float64{float64(r.Voxel[0]), float64(r.Voxel[1]), float64(r.Voxel[2])})
				if w != r.World {
					t.Errorf("world %v want %v", r.World, w)
				}
			}
			click(sv, sv.ToScreen(3, 4), desktop.MouseButtonPrimary, 0)
			p, _ := sv.Sess.Prompts(k)
			if len(p.Points) != 1 || p.Points[0].U != 3 || p.Points[0].V != 4 || !p.Points[0].Positive {
				t.Errorf("prompts %+v", p)
			}
		})
	}
}

// TestPhysicalAspect: 0.5 x 2 mm pixels are drawn four times taller than wide.
func TestPhysicalAspect(t *testing.T) {
	a := volume.Affine{{0.5, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	sv, _ := newView(t, testVolume([3]int{40, 10, 3}, a))
	p0, p1 := sv.ToScreen(0, 0), sv.ToScreen(1, 1)
	dx, dy := math.Abs(float64(p1.X-p0.X)), math.Abs(float64(p1.Y-p0.Y))
	if math.Abs(dy/dx-4) > 1e-3 {
		t.Errorf("pixel drawn %v x %v", dx, dy)
	}
}

func TestGesturesPromptsBrushUndoWL(t *testing.T) {
	sv, w := newView(t, testVolume([3]int{64, 64, 8}, volume.Identity()))
	var prompted, edited int
	// A clock that ticks on each reading: which pointer event started the
	// click→mask clock shows in the time reported.
	var ticks []time.Time
	sv.Now = func() time.Time {
		ticks = append(ticks, time.Date(2025, 1, 2, 3, 4, len(ticks), 0, time.UTC))
		return ticks[len(ticks)-1]
	}
	var asked []time.Time
	sv.OnPrompt = func(_ interaction.SliceKey, at time.Time) {
		prompted++
		asked = append(asked, at)
	}
	sv.OnEdited = func() { edited++ }
	k := sv.Key()
	click(sv, sv.ToScreen(10, 12), desktop.MouseButtonPrimary, 0)
	click(sv, sv.ToScreen(20, 22), desktop.MouseButtonSecondary, 0)
	click(sv, sv.ToScreen(30, 32), desktop.MouseButtonPrimary, fyne.KeyModifierShift)
	drag(sv, sv.ToScreen(5, 6), sv.ToScreen(40, 45))
	p, _ := sv.Sess.Prompts(k)
	if len(p.Points) != 3 || !p.Points[0].Positive || p.Points[1].Positive || p.Points[2].Positive {
		t.Fatalf("points %+v", p.Points)
	}
	// Three clicks read the clock at the press; the drag at its press and release.
	if len(ticks) != 5 || !slices.Equal(asked, []time.Time{ticks[0], ticks[1], ticks[2], ticks[4]}) {
		t.Errorf("prompts timed at %v, clock read at %v: want each click's press and the drag's release", asked, ticks)
	}
	if p.Box == nil || p.Box.U0 != 5 || p.Box.V0 != 6 || p.Box.U1 != 40 || p.Box.V1 != 45 {
		t.Fatalf("box %+v", p.Box)
	}
	if prompted != 4 {
		t.Errorf("OnPrompt called %d times", prompted)
	}
	// The frame shows the markers: the positive one is green at its position.
	img := w.Canvas().Capture()
	pos := sv.ToScreen(10, 12)
	sc := w.Canvas().Scale()
	c := img.At(int(pos.X*sc)-3, int(pos.Y*sc)-3)
	savePNG(t, img, "markers.png")
	if r, g, b, _ := c.RGBA(); !(g > r && g > b) {
		t.Errorf("no green marker at the positive point: %v", c)
	}
	// Brush stroke, then undo it.
	sv.Ctrl.SetTool(interaction.ToolBrush)
	sv.Ctrl.SetRadius(2)
	drag(sv, sv.ToScreen(10, 40), sv.ToScreen(30, 40))
	if sv.Sess.LabelAt([3]int{20, 40, k.Index}) != 1 {
		t.Fatal("brush did not paint")
	}
	if edited != 1 {
		t.Errorf("OnEdited %d", edited)
	}
	sv.Sess.Undo()
	if sv.Sess.LabelAt([3]int{20, 40, k.Index}) != 0 {
		t.Error("undo kept the stroke")
	}
	// Right-drag changes the window; no negative point is added.
	before := sv.Window()
	ev := &desktop.MouseEvent{Button: desktop.MouseButtonSecondary}
	ev.Position = fyne.NewPos(200, 200)
	sv.MouseDown(ev)
	ev.Position = fyne.NewPos(300, 150)
	sv.MouseMoved(ev)
	sv.MouseUp(ev)
	after := sv.Window()
	if !(after[1] > before[1] && after[0] > before[0]) {
		t.Errorf("right-drag window %v -> %v", before, after)
	}
	if p2, _ := sv.Sess.Prompts(k); len(p2.Points) != 3 {
		t.Errorf("right-drag added a point")
	}
}

func TestScrollZoomKeys(t *testing.T) {
	sv, _ := newView(t, testVolume([3]int{32, 32, 40}, volume.Identity()))
	var dirs []int
	sv.OnSlice = func(k interaction.SliceKey, d int) { dirs = append(dirs, d) }
	start := sv.Key().Index
	ev := &fyne.ScrollEvent{Scrolled: fyne.NewDelta(0, 1)}
	ev.Position = fyne.NewPos(200, 200)
	sv.Scrolled(ev)
	sv.TypedKey(&fyne.KeyEvent{Name: fyne.KeyPageUp})
	sv.TypedKey(&fyne.KeyEvent{Name: fyne.KeyDown})
	if got := sv.Key().Index; got != start+10 {
		t.Errorf("index %d want %d", got, start+10)
	}
	if len(dirs) != 3 || dirs[0] != 1 || dirs[2] != -1 {
		t.Errorf("directions %v", dirs)
	}
	sv.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEnd})
	if sv.Key().Index != 39 {
		t.Error("End")
	}
	z0 := sv.View().Zoom
	sv.CtrlHeld = func() bool { return true }
	// Zoom keeps the voxel under the pointer in place.
	pos := fyne.NewPos(150, 120)
	r0 := sv.ReadoutAt(pos)
	sv.Scrolled(&fyne.ScrollEvent{PointEvent: fyne.PointEvent{Position: pos}, Scrolled: fyne.NewDelta(0, 1)})
	if z := sv.View().Zoom; !(z > z0) {
		t.Errorf("ctrl+wheel zoom %v -> %v", z0, z)
	}
	if r1 := sv.ReadoutAt(pos); r1.Voxel != r0.Voxel {
		t.Errorf("zoom moved the voxel under the pointer: %v -> %v", r0.Voxel, r1.Voxel)
	}
	sv.Fit()
	if math.Abs(sv.View().Zoom-z0) > 1e-9 {
		t.Error("fit")
	}
	sv.OneToOne()
	if sv.View().Zoom != 1 {
		t.Errorf("1:1 zoom %v", sv.View().Zoom)
	}
}

func TestPreviewAndLabelsDrawn(t *testing.T) {
	sv, w := newView(t, testVolume([3]int{32, 32, 4}, volume.Identity()))
	k := sv.Key()
	sv.Sess.AddPoint(k, 16, 16, true)
	_, g := sv.Sess.Prompts(k)
	m := make([]uint8, 32*32)
	for v := 8; v < 24; v++ {
		for u := 8; u < 24; u++ {
			m[u+32*v] = 1
		}
	}
	sv.Sess.SetCandidates(&interaction.Candidates{Key: k, Gen: g, W: 32, H: 32, Masks: [][]uint8{m}, Scores: []float32{0.9}})
	sv.Refresh()
	img := w.Canvas().Capture()
	at := func(u, v int) (uint32, uint32, uint32) {
		p := sv.ToScreen(u, v)
		s := w.Canvas().Scale()
		r, g, b, _ := img.At(int(p.X*s), int(p.Y*s)).RGBA()
		return r >> 8, g >> 8, b >> 8
	}
	if r, g, b := at(8, 12); !(r > 200 && g > 200 && b < 50) {
		t.Errorf("preview edge not yellow: %d %d %d", r, g, b)
	}
	if err := sv.Sess.Accept(sv.Window()); err != nil {
		t.Fatal(err)
	}
	sv.Refresh()
	img = w.Canvas().Capture()
	if r, g, b := at(12, 12); !(r > g+40 && r > b+40) {
		t.Errorf("label 1 not reddish: %d %d %d", r, g, b)
	}
	_ = image.Point{}
}

func BenchmarkGenerate800(b *testing.B) {
	test.NewTempApp(b)
	vol := testVolume([3]int{512, 512, 8}, volume.Identity())
	s := interaction.NewSession(vol)
	sv := NewSliceView(s, interaction.NewController(s))
	w := test.NewWindow(sv)
	defer w.Close()
	w.Resize(fyne.NewSize(800, 800))
	sv.Resize(fyne.NewSize(800, 800))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sv.sliceOK = false // re-extract the slice, as on a scroll
		sv.generate(800, 800)
	}
}

// savePNG keeps a frame for a human to look at when MEDSA_TEST_OUT is set.
func savePNG(t *testing.T, img image.Image, name string) {
	dir := os.Getenv("MEDSA_TEST_OUT")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	png.Encode(f, img)
}

// TestRenderWhileOthersEdit: the raster generator reads the tool, the brush
// radius, the labels and the view state through their locks, so a job or
// another goroutine changing them while a frame is drawn is no data race
// (run with -race); every frame is still drawn.
func TestRenderWhileOthersEdit(t *testing.T) {
	sv, _ := newView(t, testVolume([3]int{64, 64, 8}, volume.Identity()))
	sv.cursorIn = true
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		k := interaction.SliceKey{Plane: volume.Axial, Index: 4}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sv.Ctrl.SetTool(interaction.Tool(i % 4))
			sv.Ctrl.SetRadius(float64(1 + i%5))
			sv.State.SetWindow([2]float64{40, float64(100 + i%300)})
			if err := sv.Sess.AddPoint(k, float64(i%64), 3, true); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	before := sv.Stats().Frames
	for i := 0; i < 30; i++ {
		sv.generate(200, 200)
	}
	close(stop)
	<-done
	if got := sv.Stats().Frames - before; got != 30 {
		t.Errorf("%d frames drawn, want 30", got)
	}
}

// Zoom and pan are the workspace.View's, per plane: they survive a plane
// switch and a widget drawing another view state has its own.
func TestZoomPanLiveInViewState(t *testing.T) {
	sv, _ := newView(t, testVolume([3]int{32, 32, 40}, volume.Identity()))
	fit := sv.View()
	if z := sv.State.ZoomPan(volume.Axial); !z.Fitted || z.Zoom != fit.Zoom {
		t.Fatalf("fitted view state %+v, view zoom %v", z, fit.Zoom)
	}
	sv.ZoomAt(fyne.NewPos(100, 120), 2)
	zoomed := sv.View()
	if z := sv.State.ZoomPan(volume.Axial); z.Fitted || z.Zoom != zoomed.Zoom || z.PanX != zoomed.PanX || z.PanY != zoomed.PanY {
		t.Fatalf("zoom not in the view state: %+v, view %v %v %v", z, zoomed.Zoom, zoomed.PanX, zoomed.PanY)
	}
	sv.SetPlane(volume.Coronal)
	if z := sv.View().Zoom; z == zoomed.Zoom {
		t.Error("coronal shows axial's zoom")
	}
	sv.SetPlane(volume.Axial)
	if v := sv.View(); v.Zoom != zoomed.Zoom || v.PanX != zoomed.PanX || v.PanY != zoomed.PanY {
		t.Errorf("plane switch lost the zoom: %v,%v,%v want %v,%v,%v", v.Zoom, v.PanX, v.PanY, zoomed.Zoom, zoomed.PanX, zoomed.PanY)
	}
	other := NewSliceView(sv.Sess, sv.Ctrl)
	other.Resize(fyne.NewSize(400, 400))
	if z := other.State.ZoomPan(volume.Axial); !z.Fitted {
		t.Errorf("another view state shares the zoom: %+v", z)
	}
}
