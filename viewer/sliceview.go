// Package viewer holds medsa's Fyne widgets: the slice view draws a
// workspace.View (plane, slice, window, zoom and pan) of a volume with its
// label overlay, prompt glyphs and the model's preview, and turns pointer
// events into tool gestures of the interaction package. It owns no annotation
// state (that lives in interaction.Session) and no view state (that lives in
// the workspace.View); it keeps only each plane's geometry sized to the
// widget, and refits a fitted plane when its size changes. Pointer, key and
// paint callbacks all run on Fyne's UI goroutine; the session and the view
// state are read through their own locks.
package viewer

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/viewer/render"
	"github.com/medsa/medsa/workspace"
)

// Readout describes the voxel under the cursor.
type Readout struct {
	Inside    bool
	Voxel     [3]int
	World     [3]float64
	Value     []float32 // one value per channel
	Label     uint16
	LabelName string
	Unit      string // "HU" for CT
}

func (r Readout) String() string {
	if !r.Inside {
		return ""
	}
	val := ""
	if len(r.Value) == 1 {
		val = fmt.Sprintf("%.6g", r.Value[0])
		if r.Unit != "" {
			val += " " + r.Unit
		}
	} else {
		val = fmt.Sprintf("%v", r.Value)
	}
	s := fmt.Sprintf("(%d, %d, %d)  %.1f, %.1f, %.1f mm  %s", r.Voxel[0], r.Voxel[1], r.Voxel[2], r.World[0], r.World[1], r.World[2], val)
	if r.Label != 0 {
		s += "  " + r.LabelName
	}
	return s
}

// FrameStats count rendered frames (for the scrolling benchmark).
type FrameStats struct {
	Frames   int
	RenderNS int64 // total time in the raster generator
}

// SliceView is the slice widget.
type SliceView struct {
	widget.BaseWidget

	Sess  *interaction.Session
	Ctrl  *interaction.Controller
	State *workspace.View // plane, slices, window, zoom and pan: the view state this widget draws

	// Callbacks (called on the UI goroutine).
	// OnPrompt: the prompts of k changed, ask the model; at is the pointer
	// event that asked (the press of a click, the release of a box drag):
	// where the click→mask clock starts.
	OnPrompt func(k interaction.SliceKey, at time.Time)
	OnSlice  func(k interaction.SliceKey, dir int) // slice changed (dir +1/-1/0)
	OnCursor func(r Readout)                       // pointer moved
	OnWindow func(w [2]float64)                    // window/level changed
	OnEdited func()                                // brush/eraser changed labels
	OnKey    func(ev *fyne.KeyEvent) bool          // key typed while the view has focus
	OnError  func(err error)                       // a gesture was refused
	CtrlHeld func() bool                           // overrides the driver's modifier state (tests)
	Now      func() time.Time                      // clock of pointer events (tests); nil = time.Now
	Post     func(func())                          // runs a callback on the UI goroutine; nil = fyne.Do
	// OnMaskPainted reports, once per MarkPending, how long after it the first
	// frame showing a preview mask was drawn (the click->mask time a user sees).
	OnMaskPainted func(d time.Duration)
	// Cross, when set, gives the linked crosshair's voxel; the view draws it.
	Cross func() ([3]int, bool)

	mu      sync.Mutex
	views   map[volume.Plane]*render.View // each plane's geometry sized to the widget; zoom and pan are State's
	slice   *volume.Slice
	sliceK  interaction.SliceKey
	sliceOK bool
	img     *image.RGBA
	screen  *image.RGBA
	stats   FrameStats

	btn       desktop.MouseButton
	wlStart   fyne.Position
	wlWin     [2]float64
	wlActive  bool
	panLast   fyne.Position
	cursor    fyne.Position
	cursorIn  bool
	raster    *canvas.Raster
	letters   [4]*canvas.Text
	info      *canvas.Text
	size      fyne.Size
	focused   bool
	pendingAt time.Time
	downAt    time.Time // when the pointer went down for the gesture in progress
	photo     bool
	unitLabel string
}

// NewSliceView shows sess's volume on the axial plane (the only plane of a 2D image)
// with a view state of its own.
func NewSliceView(sess *interaction.Session, ctrl *interaction.Controller) *SliceView {
	return NewSliceViewOf(workspace.NewView(sess.Volume()), sess, ctrl)
}

// NewSliceViewOf draws the view state st (a workspace document's view).
func NewSliceViewOf(st *workspace.View, sess *interaction.Session, ctrl *interaction.Controller) *SliceView {
	v := sess.Volume()
	sv := &SliceView{Sess: sess, Ctrl: ctrl, State: st, views: map[volume.Plane]*render.View{}}
	sv.photo = v.Channels == 3 || (v.Is2D() && v.Modality != "CT" && v.Modality != "MR")
	if v.Modality == "CT" {
		sv.unitLabel = "HU"
	}
	sv.ExtendBaseWidget(sv)
	return sv
}

// --- state accessors ---

// Key is the slice shown.
func (sv *SliceView) Key() interaction.SliceKey { return sv.State.Key() }

// NumSlices along the current plane.
func (sv *SliceView) NumSlices() int { return sv.State.NumSlices() }

// Plane shown.
func (sv *SliceView) Plane() volume.Plane { return sv.State.Plane() }

// SetPlane switches the plane (2D images have only axial).
func (sv *SliceView) SetPlane(p volume.Plane) {
	sv.State.SetPlane(p)
	sv.Refresh()
	if sv.OnSlice != nil {
		sv.OnSlice(sv.Key(), 0)
	}
}

// SetIndex shows slice idx (clamped) of the current plane.
func (sv *SliceView) SetIndex(idx int) {
	old, now := sv.State.SetIndex(idx)
	if old == now {
		return
	}
	sv.Refresh()
	if sv.OnSlice != nil {
		dir := 1
		if now < old {
			dir = -1
		}
		sv.OnSlice(sv.Key(), dir)
	}
}

// Step scrolls by d slices.
func (sv *SliceView) Step(d int) { sv.SetIndex(sv.Key().Index + d) }

// Window returns the display window (center, width).
func (sv *SliceView) Window() [2]float64 { return sv.State.Window() }

// SetWindow sets the display window (width at least 1).
func (sv *SliceView) SetWindow(w [2]float64) {
	w = sv.State.SetWindow(w)
	sv.Refresh()
	if sv.OnWindow != nil {
		sv.OnWindow(w)
	}
}

// IsPhoto reports a colour or 2D photo shown as stored (no W/L, no orientation letters).
func (sv *SliceView) IsPhoto() bool { return sv.photo }

// viewLocked returns the current plane's view transform, sized to the widget,
// with the zoom and pan of the view state (lock held).
func (sv *SliceView) viewLocked() *render.View {
	_, v := sv.planeViewLocked()
	return v
}

// planeViewLocked is viewLocked with the plane it is of (lock held).
func (sv *SliceView) planeViewLocked() (volume.Plane, *render.View) {
	p := sv.State.Plane()
	v, ok := sv.views[p]
	vol := sv.Sess.Volume()
	if !ok {
		axis := sv.State.Axis(p)
		ua, va := volume.SliceAxes(axis)
		sp := vol.Spacing()
		v = &render.View{W: vol.Size[ua], H: vol.Size[va], Spacing: [2]float64{sp[ua], sp[va]},
			O: render.Orient(vol.Affine, p, ua, va, sv.photo)}
		if vol.Channels == 3 || sv.photo {
			v.Spacing = [2]float64{1, 1} // photos: square pixels unless the reader knew better
			if sp[ua] > 0 && sp[va] > 0 && sp[ua] != 1 {
				v.Spacing = [2]float64{sp[ua], sp[va]}
			}
		}
		sv.views[p] = v
	}
	z := sv.State.ZoomPan(p)
	v.Zoom, v.PanX, v.PanY = z.Zoom, z.PanX, z.PanY
	if v.ViewW != float64(sv.size.Width) || v.ViewH != float64(sv.size.Height) {
		v.ViewW, v.ViewH = float64(sv.size.Width), float64(sv.size.Height)
		if z.Fitted {
			v.Fit()
			sv.State.SetZoomPan(p, workspace.ZoomPan{Zoom: v.Zoom, PanX: v.PanX, PanY: v.PanY, Fitted: true})
		}
	}
	return p, v
}

// changeView applies f to the current plane's view transform, stores the
// zoom and pan it leaves in the view state (fitted or not) and redraws.
func (sv *SliceView) changeView(fitted bool, f func(v *render.View)) {
	sv.mu.Lock()
	p, v := sv.planeViewLocked()
	f(v)
	sv.State.SetZoomPan(p, workspace.ZoomPan{Zoom: v.Zoom, PanX: v.PanX, PanY: v.PanY, Fitted: fitted})
	sv.mu.Unlock()
	sv.Refresh()
}

// View returns a copy of the current view transform (Fyne units).
func (sv *SliceView) View() render.View {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return *sv.viewLocked()
}

// Fit fits the slice to the view.
func (sv *SliceView) Fit() { sv.changeView(true, (*render.View).Fit) }

// OneToOne shows one screen pixel per image pixel.
func (sv *SliceView) OneToOne() { sv.changeView(false, (*render.View).OneToOne) }

// ZoomAt zooms by f around pos.
func (sv *SliceView) ZoomAt(pos fyne.Position, f float64) {
	sv.changeView(false, func(v *render.View) { v.ZoomAt(float64(pos.X), float64(pos.Y), f) })
}

// ToSlice maps a widget position to slice pixel coordinates.
func (sv *SliceView) ToSlice(pos fyne.Position) (u, v float64, ok bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.viewLocked().ScreenToSlice(float64(pos.X), float64(pos.Y))
}

// ToScreen maps slice pixel (u, v)'s centre to a widget position.
func (sv *SliceView) ToScreen(u, v int) fyne.Position {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	x, y := sv.viewLocked().SliceToScreen(float64(u)+0.5, float64(v)+0.5)
	return fyne.NewPos(float32(x), float32(y))
}

// Stats returns the frame counters.
func (sv *SliceView) Stats() FrameStats {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.stats
}

// --- rendering ---

// CreateRenderer implements fyne.Widget.
func (sv *SliceView) CreateRenderer() fyne.WidgetRenderer {
	sv.raster = canvas.NewRaster(sv.generate)
	sv.raster.ScaleMode = canvas.ImageScalePixels
	objs := []fyne.CanvasObject{sv.raster}
	for i := range sv.letters {
		t := canvas.NewText("", color.RGBA{255, 220, 80, 255})
		t.TextStyle.Bold = true
		t.TextSize = 15
		sv.letters[i] = t
		objs = append(objs, t)
	}
	sv.info = canvas.NewText("", color.RGBA{200, 200, 200, 255})
	sv.info.TextSize = 12
	objs = append(objs, sv.info)
	return &sliceRenderer{sv: sv, objs: objs}
}

type sliceRenderer struct {
	sv   *SliceView
	objs []fyne.CanvasObject
}

func (r *sliceRenderer) Destroy() {}

func (r *sliceRenderer) Objects() []fyne.CanvasObject { return r.objs }

func (r *sliceRenderer) MinSize() fyne.Size { return fyne.NewSize(200, 200) }

func (r *sliceRenderer) Layout(s fyne.Size) {
	sv := r.sv
	sv.mu.Lock()
	sv.size = s
	sv.mu.Unlock()
	sv.raster.Resize(s)
	sv.raster.Move(fyne.NewPos(0, 0))
	for i, t := range sv.letters {
		ms := t.MinSize()
		var p fyne.Position
		switch i {
		case 0:
			p = fyne.NewPos(6, (s.Height-ms.Height)/2)
		case 1:
			p = fyne.NewPos(s.Width-ms.Width-6, (s.Height-ms.Height)/2)
		case 2:
			p = fyne.NewPos((s.Width-ms.Width)/2, 4)
		case 3:
			p = fyne.NewPos((s.Width-ms.Width)/2, s.Height-ms.Height-4)
		}
		t.Move(p)
		t.Resize(ms)
	}
	sv.info.Move(fyne.NewPos(6, 4))
	sv.info.Resize(sv.info.MinSize())
}

func (r *sliceRenderer) Refresh() {
	sv := r.sv
	sv.mu.Lock()
	v := sv.viewLocked()
	sv.mu.Unlock()
	k, w := sv.State.Key(), sv.State.Window()
	for i, t := range sv.letters {
		t.Text = v.O.Letters[i]
	}
	n := sv.Sess.Volume().NumSlices(k.Plane)
	txt := fmt.Sprintf("%s %d/%d", k.Plane, k.Index+1, n)
	if sv.Sess.Volume().Is2D() {
		txt = ""
	}
	if !sv.photo && sv.Sess.Volume().Channels == 1 {
		txt += fmt.Sprintf("   W %.0f L %.0f", w[1], w[0])
	}
	sv.info.Text = txt
	r.Layout(sv.Size())
	for _, o := range r.objs {
		o.Refresh()
	}
}

var bg = color.RGBA{0, 0, 0, 255}

// generate is the raster's pixel path: window the slice, blend labels and
// preview, sample through the view, draw the prompts. w, h are device pixels.
func (sv *SliceView) generate(w, h int) image.Image {
	t0 := time.Now()
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if w <= 0 || h <= 0 {
		return image.NewRGBA(image.Rect(0, 0, 1, 1))
	}
	k, window := sv.State.Key(), sv.State.Window()
	vol := sv.Sess.Volume()
	if !sv.sliceOK || sv.sliceK != k {
		s, err := viewSlice(vol, k)
		if err != nil {
			return image.NewRGBA(image.Rect(0, 0, w, h))
		}
		sv.slice, sv.sliceK, sv.sliceOK = s, k, true
	}
	s := sv.slice
	ly := &render.Layers{PreviewColor: [3]uint8{255, 230, 0}}
	labs := sv.Sess.Labels()
	maxV := uint16(0)
	for _, l := range labs {
		maxV = max(maxV, l.Value)
	}
	ly.Styles = make([]render.Style, int(maxV)+1)
	for _, l := range labs {
		if l.Visible {
			ly.Styles[l.Value] = render.Style{Color: l.Color, Alpha: uint8(l.Opacity*255 + 0.5), Outline: true}
		}
	}
	if pk, mask, _, _, _ := sv.Sess.Preview(); mask != nil && pk == k {
		ly.Preview = mask
	}
	// Blend the live labels under the session's lock: no copy for axial slices.
	if !sv.Sess.WithSliceLabels(s.Axis, s.Index, func(labels []uint16) {
		ly.Labels = labels
		sv.img = render.Slice(sv.img, s, window, ly)
	}) {
		return image.NewRGBA(image.Rect(0, 0, w, h))
	}

	if sv.screen == nil || sv.screen.Rect.Dx() != w || sv.screen.Rect.Dy() != h {
		sv.screen = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	// The view is in Fyne units; the raster in device pixels.
	v := *sv.viewLocked()
	scale := 1.0
	if sv.size.Width > 0 {
		scale = float64(w) / float64(sv.size.Width)
	}
	v.ViewW, v.ViewH = float64(w), float64(h)
	v.Zoom *= scale
	v.PanX *= scale
	v.PanY *= scale
	render.Compose(sv.screen, sv.img, &v, bg)

	// Prompts of this slice, the rubber band and the brush cursor.
	p, _ := sv.Sess.Prompts(k)
	if p.Box != nil {
		x0, y0 := v.SliceToScreen(p.Box.U0+0.5, p.Box.V0+0.5)
		x1, y1 := v.SliceToScreen(p.Box.U1+0.5, p.Box.V1+0.5)
		render.StrokeRect(sv.screen, int(x0), int(y0), int(x1), int(y1), 2, color.RGBA{80, 200, 255, 255})
	}
	if rb, ok := sv.Ctrl.RubberBand(); ok && sv.Ctrl.S == sv.Sess {
		x0, y0 := v.SliceToScreen(rb.U0+0.5, rb.V0+0.5)
		x1, y1 := v.SliceToScreen(rb.U1+0.5, rb.V1+0.5)
		render.StrokeRect(sv.screen, int(x0), int(y0), int(x1), int(y1), 1, color.RGBA{255, 255, 255, 255})
	}
	for _, pt := range p.Points {
		x, y := v.SliceToScreen(pt.U+0.5, pt.V+0.5)
		render.Marker(sv.screen, x, y, pt.Positive)
	}
	if sv.Cross != nil {
		if c, ok := sv.Cross(); ok {
			x, y := v.SliceToScreen(float64(c[s.UAxis])+0.5, float64(c[s.VAxis])+0.5)
			col := color.RGBA{90, 170, 255, 255}
			render.FillRect(sv.screen, int(x), 0, int(x)+1, h, col)
			render.FillRect(sv.screen, 0, int(y), w, int(y)+1, col)
		}
	}
	if tool := sv.Ctrl.Tool(); sv.cursorIn && (tool == interaction.ToolBrush || tool == interaction.ToolEraser) {
		r := sv.Ctrl.Radius() * s.Spacing[0] * v.Zoom
		render.Circle(sv.screen, float64(sv.cursor.X)*scale, float64(sv.cursor.Y)*scale, r, color.RGBA{255, 255, 255, 255})
	}
	if !sv.pendingAt.IsZero() && ly.Preview != nil {
		d := time.Since(sv.pendingAt)
		sv.pendingAt = time.Time{}
		if f := sv.OnMaskPainted; f != nil {
			post := sv.Post
			if post == nil {
				post = fyne.Do
			}
			go post(func() { f(d) }) // not from inside a paint
		}
	}
	sv.stats.Frames++
	sv.stats.RenderNS += time.Since(t0).Nanoseconds()
	return sv.screen
}

// MarkPending starts the click->mask clock: the next frame that shows a preview stops it.
func (sv *SliceView) MarkPending(t time.Time) {
	sv.mu.Lock()
	sv.pendingAt = t
	sv.mu.Unlock()
}

// --- input ---

func (sv *SliceView) now() time.Time {
	if sv.Now != nil {
		return sv.Now()
	}
	return time.Now()
}

func (sv *SliceView) ctrlDown() bool {
	if sv.CtrlHeld != nil {
		return sv.CtrlHeld()
	}
	if d, ok := fyne.CurrentApp().Driver().(desktop.Driver); ok {
		return d.CurrentKeyModifiers()&(fyne.KeyModifierControl|fyne.KeyModifierSuper) != 0
	}
	return false
}

// Scrolled: wheel scrolls slices; Ctrl+wheel zooms around the pointer.
func (sv *SliceView) Scrolled(ev *fyne.ScrollEvent) {
	d := ev.Scrolled.DY
	if d == 0 {
		return
	}
	if sv.ctrlDown() {
		f := 1.15
		if d < 0 {
			f = 1 / f
		}
		sv.ZoomAt(ev.Position, f)
		return
	}
	if d > 0 {
		sv.Step(1)
	} else {
		sv.Step(-1)
	}
}

// updateDragThreshold keeps the click/drag threshold at 4 screen pixels.
func (sv *SliceView) updateDragThreshold() {
	sv.mu.Lock()
	v := sv.viewLocked()
	th := 4 / (v.Zoom * v.Spacing[0])
	sv.mu.Unlock()
	sv.Ctrl.DragThreshold = th
}

// MouseDown starts a gesture: left = tool, right = negative point or W/L drag, middle = pan.
func (sv *SliceView) MouseDown(ev *desktop.MouseEvent) {
	sv.downAt = sv.now()
	sv.TakeFocus()
	sv.btn = ev.Button
	sv.updateDragThreshold()
	switch ev.Button {
	case desktop.MouseButtonPrimary, desktop.MouseButtonSecondary:
		u, v, ok := sv.ToSlice(ev.Position)
		if ev.Button == desktop.MouseButtonSecondary {
			sv.wlStart, sv.wlWin, sv.wlActive = ev.Position, sv.Window(), false
		}
		if !ok {
			return
		}
		b := interaction.Left
		if ev.Button == desktop.MouseButtonSecondary {
			b = interaction.Right
		}
		if sv.Ctrl.Press(sv.Key(), math.Floor(u), math.Floor(v), b, ev.Modifier&fyne.KeyModifierShift != 0) == interaction.LabelsEdited {
			sv.Refresh()
		}
	case desktop.MouseButtonTertiary:
		sv.panLast = ev.Position
	}
}

// Dragged moves a left-button gesture (box, brush) or pans with the middle button.
func (sv *SliceView) Dragged(ev *fyne.DragEvent) {
	sv.mu.Lock()
	sv.cursor, sv.cursorIn = ev.Position, true
	sv.mu.Unlock()
	switch sv.btn {
	case desktop.MouseButtonTertiary:
		sv.changeView(false, func(v *render.View) {
			v.PanX += float64(ev.Position.X - sv.panLast.X)
			v.PanY += float64(ev.Position.Y - sv.panLast.Y)
			sv.panLast = ev.Position
		})
	default:
		if !sv.Ctrl.Busy() {
			return
		}
		u, v, _ := sv.ToSlice(ev.Position)
		if sv.Ctrl.Move(math.Floor(u), math.Floor(v)) != interaction.Nothing {
			sv.Refresh()
		}
	}
}

// DragEnd is handled by MouseUp.
func (sv *SliceView) DragEnd() {}

// MouseUp ends a gesture.
func (sv *SliceView) MouseUp(ev *desktop.MouseEvent) {
	btn := sv.btn
	sv.btn = 0
	if btn == desktop.MouseButtonSecondary && sv.wlActive {
		sv.wlActive = false
		sv.Ctrl.Cancel()
		return
	}
	if btn != desktop.MouseButtonPrimary && btn != desktop.MouseButtonSecondary || !sv.Ctrl.Busy() {
		return
	}
	u, v, _ := sv.ToSlice(ev.Position)
	// The click→mask clock starts where the user's request is complete: at
	// the press for a click, at the release for a box drawn by dragging.
	at := sv.downAt
	if _, boxing := sv.Ctrl.RubberBand(); boxing {
		at = sv.now()
	}
	out, err := sv.Ctrl.Release(math.Floor(u), math.Floor(v))
	if err != nil && sv.OnError != nil {
		sv.OnError(err)
	}
	sv.Refresh()
	switch out {
	case interaction.PromptChanged:
		if sv.OnPrompt != nil {
			sv.OnPrompt(sv.Key(), at)
		}
	case interaction.LabelsEdited:
		if sv.OnEdited != nil {
			sv.OnEdited()
		}
	}
}

// MouseIn implements desktop.Hoverable. It takes the keyboard focus back from toolbar widgets, so Enter, Tab,
// Esc and the arrows act on the image the pointer is over.
func (sv *SliceView) MouseIn(ev *desktop.MouseEvent) {
	sv.TakeFocus()
	sv.MouseMoved(ev)
}

// TakeFocus makes the view receive typed keys.
func (sv *SliceView) TakeFocus() {
	if c := fyne.CurrentApp().Driver().CanvasForObject(sv); c != nil && !sv.focused {
		c.Focus(sv)
	}
}

// MouseOut implements desktop.Hoverable.
func (sv *SliceView) MouseOut() {
	sv.mu.Lock()
	sv.cursorIn = false
	sv.mu.Unlock()
	if sv.OnCursor != nil {
		sv.OnCursor(Readout{})
	}
}

// MouseMoved updates the readout; with the right button held it adjusts W/L
// (horizontal: width, vertical: level).
func (sv *SliceView) MouseMoved(ev *desktop.MouseEvent) {
	sv.mu.Lock()
	sv.cursor, sv.cursorIn = ev.Position, true
	sv.mu.Unlock()
	if sv.btn == desktop.MouseButtonSecondary && !sv.photo {
		dx, dy := ev.Position.X-sv.wlStart.X, ev.Position.Y-sv.wlStart.Y
		if sv.wlActive || math.Abs(float64(dx)) > 4 || math.Abs(float64(dy)) > 4 {
			if !sv.wlActive {
				sv.Ctrl.Cancel()
			}
			sv.wlActive = true
			k := math.Max(sv.wlWin[1], 1) / 200 // a 200-pixel drag doubles the width
			sv.SetWindow([2]float64{sv.wlWin[0] - float64(dy)*k, sv.wlWin[1] + float64(dx)*k})
		}
	}
	if tool := sv.Ctrl.Tool(); tool == interaction.ToolBrush || tool == interaction.ToolEraser {
		sv.Refresh()
	}
	if sv.OnCursor != nil {
		sv.OnCursor(sv.ReadoutAt(ev.Position))
	}
}

// ReadoutAt describes the voxel under widget position pos.
func (sv *SliceView) ReadoutAt(pos fyne.Position) Readout {
	u, v, ok := sv.ToSlice(pos)
	if !ok {
		return Readout{}
	}
	k := sv.Key()
	vol := sv.Sess.Volume()
	axis := sv.State.Axis(k.Plane)
	ua, va := volume.SliceAxes(axis)
	var p [3]int
	p[axis], p[ua], p[va] = k.Index, int(u), int(v)
	r := Readout{Inside: true, Voxel: p, Unit: sv.unitLabel}
	r.World = vol.Affine.Apply([3]float64{float64(p[0]), float64(p[1]), float64(p[2])})
	for c := 0; c < vol.Channels; c++ {
		r.Value = append(r.Value, vol.At(p[0], p[1], p[2], c))
	}
	r.Label = sv.Sess.LabelAt(p)
	if l, ok := sv.Sess.Label(r.Label); ok {
		r.LabelName = l.Name
	}
	return r
}

// --- focus and keys ---

// FocusGained implements fyne.Focusable.
func (sv *SliceView) FocusGained() { sv.focused = true }

// FocusLost implements fyne.Focusable.
func (sv *SliceView) FocusLost() { sv.focused = false }

// TypedRune implements fyne.Focusable.
func (sv *SliceView) TypedRune(rune) {}

// AcceptsTab keeps Tab for cycling candidates instead of moving focus.
func (sv *SliceView) AcceptsTab() bool { return true }

// TypedKey: arrows and PgUp/PgDn scroll; the rest goes to OnKey.
func (sv *SliceView) TypedKey(ev *fyne.KeyEvent) {
	if sv.OnKey != nil && sv.OnKey(ev) {
		return
	}
	switch ev.Name {
	case fyne.KeyUp, fyne.KeyRight:
		sv.Step(1)
	case fyne.KeyDown, fyne.KeyLeft:
		sv.Step(-1)
	case fyne.KeyPageUp:
		sv.Step(10)
	case fyne.KeyPageDown:
		sv.Step(-10)
	case fyne.KeyHome:
		sv.SetIndex(0)
	case fyne.KeyEnd:
		sv.SetIndex(sv.NumSlices() - 1)
	}
}

// viewSlice returns slice k for display: axial slices of an i-fastest volume
// share the volume's memory (read-only), other planes are copied.
func viewSlice(vol *volume.Volume, k interaction.SliceKey) (*volume.Slice, error) {
	return vol.SliceView(k.Plane, k.Index)
}
