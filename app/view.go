package app

// The open document's widgets: its slice views, wired to the workspace's
// document and views (the crosshair, the shared window, the active view).

import (
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/viewer"
	"github.com/medsa/medsa/workspace"
)

// doc is the GUI side of a workspace document.
type doc struct {
	*workspace.Doc
	ctrl    *interaction.Controller
	view    *viewer.SliceView   // the active view
	views   []*viewer.SliceView // views[0] is the main one; 2×2 adds coronal and sagittal
	linking bool                // views are being moved to the crosshair
}

// viewOf is the widget drawing view state st.
func (d *doc) viewOf(st *workspace.View) *viewer.SliceView {
	for _, v := range d.views {
		if v.State == st {
			return v
		}
	}
	return nil
}

// OpenVolume shows an already loaded volume (tests; Open ends the same way).
func (u *UI) OpenVolume(vol *volume.Volume, path string) { u.attach(u.ws.OpenVolume(vol, path)) }

// attach builds the widgets of a new workspace document.
func (u *UI) attach(wd *workspace.Doc) {
	if u.propDlg != nil { // the old document's propagation was cancelled with it
		u.propDlg.Hide()
		u.propDlg = nil
	}
	ctrl := interaction.NewController(wd.Sess)
	ctrl.SetRadius(u.brushSize.Value)
	sv := viewer.NewSliceViewOf(wd.Views()[0], wd.Sess, ctrl)
	sv.Post = u.do
	d := &doc{Doc: wd, ctrl: ctrl, view: sv, views: []*viewer.SliceView{sv}}
	u.doc = d
	u.setTool(u.toolSel.Selected)
	u.wireView(d, sv)
	wd.Sess.Observe(func(c interaction.Change) {
		// Observers run on the goroutine that changed the session: the UI one
		// (the workspace applies the model's answers through Post).
		if c&(interaction.ChangeLabels|interaction.ChangeLabelTable|interaction.ChangePreview|interaction.ChangePrompts) != 0 {
			for _, v := range d.views {
				v.Refresh()
			}
		}
		if c&(interaction.ChangeLabels|interaction.ChangeLabelTable) != 0 {
			u.labelList.Refresh()
			u.updateLabelInfo()
		}
		if c&interaction.ChangePreview != 0 {
			u.updateCandStatus()
		}
		u.updateTitle()
	})
	u.centre.Objects = []fyne.CanvasObject{sv}
	u.centre.Refresh()
	u.planeSel.SetSelected("axial")
	vol := wd.Vol
	if vol.Is2D() {
		u.planeSel.Disable()
	} else {
		u.planeSel.Enable()
	}
	if vol.Channels == 3 {
		u.presetSel.Disable()
	} else {
		u.presetSel.Enable()
	}
	u.syncSlider()
	u.updateTitle()
	u.labelList.Refresh()
	u.updateLabelInfo()
	u.candStatus.SetText("")
	u.W.Canvas().Focus(sv)
	u.ws.Prefetch(wd, 1)
	u.state.attach(u, d)
	// Every note, not only the last, and in the log too: the status bar truncates.
	for _, n := range vol.Notes {
		u.logf("note: %s", n)
	}
	if len(vol.Notes) > 0 {
		u.setMessage("note: %s", strings.Join(vol.Notes, " · "))
	}
}

// wireView connects a slice view to the jobs and the status bar. With several
// views (2×2), the one under the pointer is the active one: keys, the slider
// and the plane selector act on it.
func (u *UI) wireView(d *doc, sv *viewer.SliceView) {
	activate := func() {
		if d.view == sv || u.doc != d || d.linking {
			return
		}
		d.view = sv
		d.SetActive(sv.State)
		u.planeSel.Selected = sv.Plane().String()
		u.planeSel.Refresh()
		u.syncSlider()
	}
	sv.OnPrompt = func(k interaction.SliceKey, down time.Time) {
		activate()
		if p, _ := d.Sess.Prompts(k); len(p.Points) > 0 {
			pt := p.Points[len(p.Points)-1]
			u.setCross(d, sv, d.Voxel(k, int(pt.U), int(pt.V)))
		}
		u.segment(d, k, down)
	}
	sv.OnMaskPainted = func(lat time.Duration) { u.maskPainted(d, lat) }
	sv.OnSlice = func(k interaction.SliceKey, dir int) {
		activate()
		u.ws.PrefetchSettled(d.Doc, dir)
		u.slider.Value = float64(k.Index)
		u.slider.Refresh()
		u.state.event("slice", k)
		d.Scrolled(sv.State, k)
		if len(d.views) > 1 {
			for _, v := range d.views {
				if v != sv {
					v.Refresh() // their crosshair moved
				}
			}
		}
	}
	sv.OnCursor = func(r viewer.Readout) {
		if r.Inside {
			activate()
		}
		u.readout.SetText(r.String())
	}
	sv.OnWindow = func(w [2]float64) {
		// One window for all views.
		for _, st := range d.ShareWindow(w) {
			if v := d.viewOf(st); v != nil {
				v.Refresh()
			}
		}
		if sv == d.view {
			u.ws.Prefetch(d.Doc, 0)
		}
	}
	sv.OnKey = u.onKey
	sv.OnError = func(err error) { u.setMessage("%v", err) }
	sv.OnEdited = func() { u.state.event("edit", sv.Key()) }
}

// setCross moves the linked crosshair (2×2 layout) to voxel c; the other
// views show the slices through it.
func (u *UI) setCross(d *doc, from *viewer.SliceView, c [3]int) {
	d.linking = true // programmatic scrolling does not make a view active
	defer func() { d.linking = false }()
	d.SetCross(from.State, c)
	if len(d.views) > 1 {
		for _, v := range d.views {
			if v != from {
				v.Refresh()
			}
		}
	}
}

// SetLayout shows one view, or axial, coronal and sagittal views with a linked crosshair (quad).
func (u *UI) SetLayout(quad bool) {
	d := u.doc
	if d == nil {
		return
	}
	states, err := d.SetQuad(quad)
	if err != nil {
		u.setMessage("%v", err)
		return
	}
	main := d.views[0]
	if !quad {
		for _, v := range d.views {
			v.Cross = nil
		}
		d.views = d.views[:1]
		d.view = main
		u.centre.Objects = []fyne.CanvasObject{main}
		u.centre.Refresh()
		main.Refresh()
		u.planeSel.Selected = main.Plane().String()
		u.planeSel.Refresh()
		u.syncSlider()
		return
	}
	if len(d.views) > 1 {
		return
	}
	cross := func() ([3]int, bool) { return d.Cross(), true }
	main.Cross = cross
	main.Refresh()
	for _, st := range states[1:] {
		v := viewer.NewSliceViewOf(st, d.Sess, d.ctrl)
		v.Post = u.do
		v.Cross = cross
		u.wireView(d, v)
		d.views = append(d.views, v)
	}
	info := widget.NewLabel("The view under the pointer is active.\nA click moves the crosshair;\nthe other views follow it.\nL: back to one view.")
	u.centre.Objects = []fyne.CanvasObject{container.NewGridWithColumns(2, d.views[0], d.views[1], d.views[2], container.NewCenter(info))}
	u.centre.Refresh()
	d.view = main
	u.planeSel.Selected = "axial"
	u.planeSel.Refresh()
	u.syncSlider()
}
