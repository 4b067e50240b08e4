package workspace

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model"
)

// Doc is one open study: the volume, its annotation session, its views and
// the state of its saves and jobs.
type Doc struct {
	Vol   *volume.Volume
	Path  string // what was opened (a file, a folder, a PACS series URL)
	VolID string // the engine's cache key: the path, its size and time
	Sess  *interaction.Session

	axes [3]int // array axis fixed by each plane, computed once

	mu         sync.Mutex
	savePath   string
	savedGen   uint64
	autoGen    uint64
	views      []*View // views[0] is the main one; quad adds coronal and sagittal
	active     *View
	cross      [3]int
	segCancel  context.CancelFunc
	prop       *propJob
	lastResult *model.Result
	prefetch   *time.Timer
}

func newDoc(vol *volume.Volume, path, savePath string) *Doc {
	id := path
	if st, err := os.Stat(path); err == nil {
		id = fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())
	}
	d := &Doc{Vol: vol, Path: path, VolID: id, Sess: interaction.NewSession(vol), savePath: savePath}
	for _, p := range []volume.Plane{volume.Axial, volume.Coronal, volume.Sagittal} {
		d.axes[p] = vol.Affine.PlaneAxis(p, vol.Size)
	}
	v := NewView(vol)
	d.views = []*View{v}
	d.active = v
	for a := 0; a < 3; a++ {
		d.cross[a] = vol.Size[a] / 2
	}
	return d
}

// Axis is the array axis held fixed by plane p.
func (d *Doc) Axis(p volume.Plane) int { return d.axes[p] }

// Voxel is the voxel of slice pixel (u, v) of slice k.
func (d *Doc) Voxel(k interaction.SliceKey, u, v int) [3]int {
	axis := d.axes[k.Plane]
	ua, va := volume.SliceAxes(axis)
	var p [3]int
	p[axis], p[ua], p[va] = k.Index, u, v
	return p
}

// Name is what a title shows: the study's name, else the file's.
func (d *Doc) Name() string {
	if d.Vol.Name != "" {
		return d.Vol.Name
	}
	return filepath.Base(strings.TrimRight(d.Path, "/"))
}

// Dirty reports changes since the last save (label-table edits included).
func (d *Doc) Dirty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Sess.Generation() != d.savedGen
}

// MarkSaved makes the current state the saved one (after a save, or when the
// user agreed to discard the changes).
func (d *Doc) MarkSaved() { d.markSaved(d.Sess.Generation()) }

func (d *Doc) markSaved(gen uint64) {
	d.mu.Lock()
	d.savedGen = gen
	d.mu.Unlock()
}

// SavePath is where Save writes ("" = ask).
func (d *Doc) SavePath() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.savePath
}

// SetSavePath sets where Save writes.
func (d *Doc) SetSavePath(p string) {
	d.mu.Lock()
	d.savePath = p
	d.mu.Unlock()
}

// LastResult is the model's last installed answer (for the latency readout).
func (d *Doc) LastResult() *model.Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastResult
}

// Propagating reports a propagation in progress.
func (d *Doc) Propagating() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prop != nil
}

func (d *Doc) cancelJobs() {
	d.mu.Lock()
	seg, prop := d.segCancel, d.prop
	d.segCancel = nil
	if d.prefetch != nil {
		d.prefetch.Stop()
	}
	d.mu.Unlock()
	if seg != nil {
		seg()
	}
	if prop != nil {
		prop.cancel()
	}
}

// CancelSegment drops the answer of the prompt being segmented, if any.
func (d *Doc) CancelSegment() {
	d.mu.Lock()
	c := d.segCancel
	d.segCancel = nil
	d.mu.Unlock()
	if c != nil {
		c()
	}
}

// --- views and the crosshair ---

// View is the state of one slice view: its plane, the slice shown on each
// plane, the display window and each plane's zoom and pan. Safe for
// concurrent use.
type View struct {
	vol  *volume.Volume
	axes [3]int

	mu     sync.Mutex
	plane  volume.Plane
	index  [3]int // per plane
	window [2]float64
	zoom   [3]ZoomPan // per plane
}

// ZoomPan is how one plane of a view is magnified and moved, in the units of
// the widget that draws it (Fyne units, not device pixels). Fitted means the
// slice fits the widget: the widget recomputes Zoom and Pan from its size
// whenever that changes; any zoom, pan or 1:1 clears it.
type ZoomPan struct {
	Zoom       float64 // screen units per mm (0 until first fitted)
	PanX, PanY float64 // offset of the image centre from the view centre
	Fitted     bool
}

// NewView shows vol's axial plane, each plane at its middle slice, in the
// file's window (else the automatic one).
func NewView(vol *volume.Volume) *View {
	v := &View{vol: vol, window: vol.Window}
	if vol.Window[1] <= 0 {
		v.window = vol.AutoWindow()
	}
	for _, p := range []volume.Plane{volume.Axial, volume.Coronal, volume.Sagittal} {
		v.axes[p] = vol.Affine.PlaneAxis(p, vol.Size)
		v.index[p] = vol.Size[v.axes[p]] / 2
		v.zoom[p].Fitted = true
	}
	return v
}

// Volume is the volume shown.
func (v *View) Volume() *volume.Volume { return v.vol }

// Axis is the array axis held fixed by plane p.
func (v *View) Axis(p volume.Plane) int { return v.axes[p] }

// Key is the slice shown.
func (v *View) Key() interaction.SliceKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	return interaction.SliceKey{Plane: v.plane, Index: v.index[v.plane]}
}

// Plane shown.
func (v *View) Plane() volume.Plane {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.plane
}

// NumSlices along the plane shown.
func (v *View) NumSlices() int { return v.vol.Size[v.axes[v.Plane()]] }

// SetPlane switches the plane (a 2D image has only axial).
func (v *View) SetPlane(p volume.Plane) {
	if v.vol.Is2D() {
		p = volume.Axial
	}
	v.mu.Lock()
	v.plane = p
	v.mu.Unlock()
}

// SetIndex shows slice idx (clamped) of the current plane; it returns the
// index before and after.
func (v *View) SetIndex(idx int) (old, now int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := v.vol.Size[v.axes[v.plane]]
	idx = max(0, min(idx, n-1))
	old = v.index[v.plane]
	v.index[v.plane] = idx
	return old, idx
}

// Window is the display window (center, width).
func (v *View) Window() [2]float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.window
}

// SetWindow sets the display window (width at least 1) and returns it.
func (v *View) SetWindow(w [2]float64) [2]float64 {
	w[1] = math.Max(w[1], 1)
	v.mu.Lock()
	v.window = w
	v.mu.Unlock()
	return w
}

// ZoomPan is plane p's zoom and pan (each plane keeps its own across plane
// switches; a new view fits every plane).
func (v *View) ZoomPan(p volume.Plane) ZoomPan {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.zoom[p]
}

// SetZoomPan sets plane p's zoom and pan.
func (v *View) SetZoomPan(p volume.Plane, z ZoomPan) {
	v.mu.Lock()
	v.zoom[p] = z
	v.mu.Unlock()
}

// Views lists the document's views, the main one first.
func (d *Doc) Views() []*View {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*View(nil), d.views...)
}

// Active is the view keys, the slider and the plane selector act on.
func (d *Doc) Active() *View {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active
}

// SetActive makes v the active view.
func (d *Doc) SetActive(v *View) {
	d.mu.Lock()
	d.active = v
	d.mu.Unlock()
}

// Cross is the linked crosshair's voxel.
func (d *Doc) Cross() [3]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cross
}

// Quad reports the three-view layout.
func (d *Doc) Quad() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.views) > 1
}

// SetQuad switches between one view and axial, coronal and sagittal views
// around the crosshair; it returns the views. A 2D image keeps one view.
func (d *Doc) SetQuad(on bool) ([]*View, error) {
	if on && d.Vol.Is2D() {
		return d.Views(), fmt.Errorf("a 2D image has one plane")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	main := d.views[0]
	if !on {
		d.views = d.views[:1]
		d.active = main
		return append([]*View(nil), d.views...), nil
	}
	if len(d.views) > 1 {
		return append([]*View(nil), d.views...), nil
	}
	main.SetPlane(volume.Axial)
	k := main.Key()
	for a := 0; a < 3; a++ {
		d.cross[a] = d.Vol.Size[a] / 2
	}
	d.cross[d.axes[k.Plane]] = k.Index
	for _, p := range []volume.Plane{volume.Coronal, volume.Sagittal} {
		v := NewView(d.Vol)
		v.SetWindow(main.Window())
		v.SetPlane(p)
		v.SetIndex(d.cross[d.axes[p]])
		d.views = append(d.views, v)
	}
	d.active = main
	return append([]*View(nil), d.views...), nil
}

// SetCross moves the crosshair to voxel c and every view but from to the
// slices through it; it returns the views that moved.
func (d *Doc) SetCross(from *View, c [3]int) []*View {
	d.mu.Lock()
	d.cross = c
	views := append([]*View(nil), d.views...)
	d.mu.Unlock()
	if len(views) < 2 {
		return nil
	}
	var moved []*View
	for _, v := range views {
		if v == from {
			continue
		}
		if old, now := v.SetIndex(c[d.axes[v.Plane()]]); old != now {
			moved = append(moved, v)
		}
	}
	return moved
}

// Scrolled tells the document that view v shows slice k now: the crosshair
// follows along that plane's axis (the other views redraw it).
func (d *Doc) Scrolled(v *View, k interaction.SliceKey) {
	d.mu.Lock()
	if len(d.views) > 1 {
		d.cross[d.axes[k.Plane]] = k.Index
	}
	d.mu.Unlock()
}

// ShareWindow gives every view the window w (one window for all views); it
// returns the views that changed.
func (d *Doc) ShareWindow(w [2]float64) []*View {
	var changed []*View
	for _, v := range d.Views() {
		if v.Window() != w {
			v.SetWindow(w)
			changed = append(changed, v)
		}
	}
	return changed
}

// ref names slice k as the engine sees it, under the active view's window.
func (d *Doc) ref(k interaction.SliceKey) model.SliceRef {
	r := model.SliceRef{Vol: d.Vol, VolumeID: d.VolID, Plane: k.Plane, Index: k.Index}
	if d.Vol.Channels == 1 {
		r.Window = d.Active().Window()
	}
	return r
}

// Ref is the engine's name for slice k of d under the active view's window.
func (d *Doc) Ref(k interaction.SliceKey) model.SliceRef { return d.ref(k) }

// timeNow is the workspace's clock (tests replace it).
var timeNow = time.Now
