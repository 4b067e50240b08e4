package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/viewer"
)

// Open loads path in the background (progress dialog), then shows it. A folder
// with several DICOM series asks which one.
func (u *UI) Open(path, seriesUID string) {
	opt := load.Options{SeriesUID: seriesUID}
	var dlg dialog.Dialog
	if dicomweb.IsSeriesURL(path) {
		// A series from a PACS: a determinate bar over the instances, and Cancel.
		ctx, cancel := context.WithCancel(context.Background())
		bar := widget.NewProgressBar()
		opt.Context = ctx
		opt.Progress = func(done, total int) { fyne.Do(func() { bar.SetValue(float64(done) / float64(max(total, 1))) }) }
		dlg = dialog.NewCustom("Retrieving from the PACS", "Cancel", container.NewVBox(widget.NewLabel(path), bar), u.W)
		dlg.SetOnClosed(cancel)
	} else {
		dlg = dialog.NewCustomWithoutButtons("Opening "+filepath.Base(path), container.NewVBox(widget.NewLabel(path), widget.NewProgressBarInfinite()), u.W)
	}
	dlg.Show()
	go func() {
		t0 := time.Now()
		vol, err := load.Open(path, opt)
		if err == nil {
			err = vol.Validate()
		}
		ms := time.Since(t0).Milliseconds()
		fyne.Do(func() {
			dlg.Hide()
			if series, ok := load.MultipleSeries(err); ok {
				u.pickSeries(path, series)
				return
			}
			if err != nil {
				u.showError(fmt.Errorf("could not open %s: %w\n\nChoose a DICOM folder or file, a NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd) or a PNG/JPEG/TIFF image", path, err))
				return
			}
			u.logf("opened %s in %d ms: %v %s", path, ms, vol.Size, vol.Modality)
			u.attach(vol, path)
			u.addRecent(path)
			if m := u.opt.MaskPath; m != "" {
				u.opt.MaskPath = ""
				u.OpenMask(m)
			} else {
				u.offerRecovery()
			}
		})
	}()
}

// pickSeries asks which DICOM series of a folder to open.
func (u *UI) pickSeries(path string, series []dicom.Series) {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = fmt.Sprintf("%d: %s %s (%d×%d×%d, %d files)", s.Number, s.Modality, s.Description, s.Size[0], s.Size[1], s.Size[2], s.Files)
	}
	choice := 0
	list := widget.NewRadioGroup(names, func(s string) {
		for i, n := range names {
			if n == s {
				choice = i
			}
		}
	})
	list.SetSelected(names[0])
	scroll := container.NewVScroll(list)
	scroll.SetMinSize(fyne.NewSize(560, float32(min(len(names), 8))*list.MinSize().Height/float32(len(names))+8))
	dialog.ShowCustomConfirm("This folder holds several series", "Open", "Cancel", scroll, func(ok bool) {
		if ok {
			u.Open(path, series[choice].UID)
		}
	}, u.W)
}

// OpenVolume shows an already loaded volume (tests, and Open's last step).
func (u *UI) OpenVolume(vol *volume.Volume, path string) { u.attach(vol, path) }

func (u *UI) attach(vol *volume.Volume, path string) {
	if old := u.doc; old != nil {
		u.cancelJobs(old)
		if e, _ := u.engine(); e != nil {
			e.DropVolume(old.volID)
		}
	}
	sess := interaction.NewSession(vol)
	if e, _ := u.engine(); e != nil {
		sess.ModelName = e.Manifest().ID()
	}
	ctrl := interaction.NewController(sess)
	ctrl.Radius = u.brushSize.Value
	sv := viewer.NewSliceView(sess, ctrl)
	st, _ := os.Stat(path)
	id := path
	if st != nil {
		id = fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())
	}
	d := &doc{vol: vol, path: path, volID: id, sess: sess, ctrl: ctrl, view: sv, savePath: u.opt.SavePath}
	u.doc = d
	u.setTool(u.toolSel.Selected)
	d.views = []*viewer.SliceView{sv}
	u.wireView(d, sv)
	sess.Observe(func(c interaction.Change) {
		// Observers run on the goroutine that changed the session: always the UI one.
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
	plane := "axial"
	u.planeSel.SetSelected(plane)
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
	u.prefetch(d, 1)
	u.state.attach(u, d)
	// Every note, not only the last (each used to replace the one before), and in
	// the log too: the status bar truncates.
	for _, n := range vol.Notes {
		u.logf("note: %s", n)
	}
	if len(vol.Notes) > 0 {
		u.setMessage("note: %s", strings.Join(vol.Notes, " · "))
	}
}

// wireView connects a slice view to the jobs and the status bar. With several
// views (2×2), the one under the pointer is the active one (d.view): keys, the
// slider and the plane selector act on it.
func (u *UI) wireView(d *doc, sv *viewer.SliceView) {
	activate := func() {
		if d.view == sv || u.doc != d || d.linking {
			return
		}
		d.view = sv
		u.planeSel.Selected = sv.Plane().String()
		u.planeSel.Refresh()
		u.syncSlider()
	}
	sv.OnPrompt = func(k interaction.SliceKey) {
		activate()
		if p, _ := d.sess.Prompts(k); len(p.Points) > 0 {
			pt := p.Points[len(p.Points)-1]
			axis := d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size)
			ua, va := volume.SliceAxes(axis)
			var c [3]int
			c[axis], c[ua], c[va] = k.Index, int(pt.U), int(pt.V)
			u.setCross(d, c)
		}
		u.segment(d, k)
	}
	sv.OnMaskPainted = func(lat time.Duration) { u.maskPainted(d, lat) }
	sv.OnSlice = func(k interaction.SliceKey, dir int) {
		activate()
		u.prefetchSettled(d, dir)
		u.slider.Value = float64(k.Index)
		u.slider.Refresh()
		u.state.event("slice", k)
		if len(d.views) > 1 {
			d.cross[d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size)] = k.Index
			for _, v := range d.views {
				if v != sv {
					v.Refresh()
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
		for _, v := range d.views {
			if v != sv && v.Window() != w {
				v.SetWindow(w)
			}
		}
		if sv == d.view {
			u.prefetch(d, 0)
		}
	}
	sv.OnKey = u.onKey
	sv.OnError = func(err error) { u.setMessage("%v", err) }
	sv.OnEdited = func() { u.state.event("edit", sv.Key()) }
}

// setCross moves the linked crosshair (2×2 layout) and the other views' slices to voxel c.
func (u *UI) setCross(d *doc, c [3]int) {
	d.cross = c
	if len(d.views) < 2 {
		return
	}
	d.linking = true // programmatic scrolling does not make a view active
	defer func() { d.linking = false }()
	for _, v := range d.views {
		if v == d.view {
			continue
		}
		axis := d.vol.Affine.PlaneAxis(v.Plane(), d.vol.Size)
		v.SetIndex(c[axis])
		v.Refresh()
	}
}

// SetLayout shows one view, or axial, coronal and sagittal views with a linked crosshair (quad).
func (u *UI) SetLayout(quad bool) {
	d := u.doc
	if d == nil {
		return
	}
	if quad && d.vol.Is2D() {
		u.setMessage("a 2D image has one plane")
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
	main.SetPlane(volume.Axial)
	k := main.Key()
	axis := d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size)
	for a := 0; a < 3; a++ {
		d.cross[a] = d.vol.Size[a] / 2
	}
	d.cross[axis] = k.Index
	cross := func() ([3]int, bool) { return d.cross, true }
	main.Cross = cross
	d.linking = true
	defer func() { d.linking = false }()
	for _, p := range []volume.Plane{volume.Coronal, volume.Sagittal} {
		v := viewer.NewSliceView(d.sess, d.ctrl)
		v.SetWindow(main.Window())
		v.SetPlane(p)
		v.SetIndex(d.cross[d.vol.Affine.PlaneAxis(p, d.vol.Size)])
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

// --- unsaved changes ---

func (u *UI) dirty() bool {
	d := u.doc
	return d != nil && d.sess.Generation() != d.savedGen
}

// guardUnsaved runs f now, or after the user agreed to drop unsaved changes.
func (u *UI) guardUnsaved(f func()) {
	if !u.dirty() {
		f()
		return
	}
	dialog.ShowConfirm("Unsaved changes", "The mask has unsaved changes. Discard them?", func(ok bool) {
		if ok {
			u.removeRecovery(u.doc)
			u.doc.savedGen = u.doc.sess.Generation()
			f()
		}
	}, u.W)
}

func (u *UI) closeIntercept() {
	u.guardUnsaved(func() {
		if d := u.doc; d != nil {
			u.cancelJobs(d)
		}
		u.W.Close()
	})
}

// --- dialogs for files ---

func (u *UI) openFileDialog() {
	u.guardUnsaved(func() {
		fd := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil {
				u.showError(err)
				return
			}
			if r == nil {
				return
			}
			r.Close()
			u.Open(r.URI().Path(), "")
		}, u.W)
		fd.Resize(fyne.NewSize(900, 600))
		fd.Show()
	})
}

func (u *UI) openFolderDialog() {
	u.guardUnsaved(func() {
		fd := dialog.NewFolderOpen(func(l fyne.ListableURI, err error) {
			if err != nil {
				u.showError(err)
				return
			}
			if l != nil {
				u.Open(l.Path(), "")
			}
		}, u.W)
		fd.Resize(fyne.NewSize(900, 600))
		fd.Show()
	})
}

func (u *UI) openMaskDialog() {
	d := u.doc
	if d == nil {
		return
	}
	fd := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			u.showError(err)
			return
		}
		r.Close()
		u.OpenMask(r.URI().Path())
	}, u.W)
	fd.SetFilter(storage.NewExtensionFileFilter(maskFileExts))
	fd.Resize(fyne.NewSize(900, 600))
	fd.Show()
}

// OpenMask loads a saved label map onto the open image (background read).
func (u *UI) OpenMask(path string) {
	d := u.doc
	if d == nil {
		return
	}
	go func() {
		lm, table, recs, err := loadMask(path, d.vol)
		fyne.Do(func() {
			if err != nil {
				u.showError(fmt.Errorf("%w\n\nThe mask must have the image's size and geometry", err))
				return
			}
			if u.doc != d {
				return
			}
			if err := d.sess.LoadLabelMap(lm, table); err != nil {
				u.showError(err)
				return
			}
			d.savedGen = d.sess.Generation()
			d.sess.SetRecords(recs)
			if d.savePath == "" {
				d.savePath = path
			}
			u.updateTitle()
			u.setMessage("opened mask %s", filepath.Base(path))
			u.state.event("mask_opened", path)
		})
	}()
}

// Save writes the mask to its path (asks for one the first time).
func (u *UI) Save() {
	d := u.doc
	if d == nil {
		return
	}
	if d.savePath == "" {
		u.SaveAs()
		return
	}
	u.saveTo(d, d.savePath, nil)
}

// maskFileExts are what the mask dialogs list (io/mask reads and writes them all;
// ".gz" covers .nii.gz, ".nrrd" covers Slicer's .seg.nrrd).
var maskFileExts = []string{".gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png"}

// hasMaskExt reports a name io/mask.Save can write.
func hasMaskExt(p string) bool {
	l := strings.ToLower(p)
	for _, e := range []string{".nii.gz", ".nii", ".png", ".nrrd", ".mha", ".mhd"} {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// SaveAs asks for a path (the mask's format follows its extension).
func (u *UI) SaveAs() {
	d := u.doc
	if d == nil {
		return
	}
	fd := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			u.showError(err)
			return
		}
		w.Close()
		p := w.URI().Path()
		if !hasMaskExt(p) {
			os.Remove(p)
			p += ".nii.gz"
		}
		d.savePath = p
		u.saveTo(d, p, nil)
	}, u.W)
	fd.SetFileName(strings.TrimSuffix(strings.TrimSuffix(studyName(d.vol, d.path), ".gz"), ".nii") + "_mask.nii.gz")
	fd.SetFilter(storage.NewExtensionFileFilter(maskFileExts))
	fd.Resize(fyne.NewSize(900, 600))
	fd.Show()
}

func (u *UI) exportPNG() {
	d := u.doc
	if d == nil {
		return
	}
	fd := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			u.showError(err)
			return
		}
		w.Close()
		p := w.URI().Path()
		if !strings.HasSuffix(strings.ToLower(p), ".png") {
			os.Remove(p)
			p += ".png"
		}
		k := d.view.Key()
		axis := d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size)
		u.saveTo(d, p, &pngSlice{Axis: axis, Index: k.Index})
	}, u.W)
	fd.SetFileName("mask_slice.png")
	fd.Show()
}

// saveTo snapshots the labels and writes them in the background.
func (u *UI) saveTo(d *doc, path string, ps *pngSlice) {
	if ps == nil && strings.HasSuffix(strings.ToLower(path), ".png") {
		k := d.view.Key()
		ps = &pngSlice{Axis: d.vol.Affine.PlaneAxis(k.Plane, d.vol.Size), Index: k.Index}
	}
	u.setMessage("saving %s…", filepath.Base(path))
	go func() {
		t0 := time.Now()
		lm, table, recs, gen := d.sess.SnapshotLabels()
		err := saveMask(path, lm, table, u.meta(d, table, recs), ps)
		ms := time.Since(t0).Milliseconds()
		fyne.Do(func() {
			if err != nil {
				u.showError(fmt.Errorf("%w\n\nChoose another folder or name", err))
				return
			}
			if ps == nil {
				d.savedGen = gen
				u.removeRecovery(d)
			}
			u.updateTitle()
			u.setMessage("saved %s (%d ms)", filepath.Base(path), ms)
			u.logf("saved %s in %d ms", path, ms)
			u.state.event("saved", path)
		})
	}()
}

func (u *UI) meta(d *doc, table []volume.Label, recs []interaction.MaskRecord) *Meta {
	sc := &Meta{Tool: "medsa", Source: d.path, Masks: recs, Volumes: map[string]float64{}}
	for _, l := range table {
		v, unit := d.sess.Measure(l.Value)
		sc.Volumes[fmt.Sprintf("%d (%s)", l.Value, unit)] = v
	}
	if e, _ := u.engine(); e != nil {
		sc.Model = e.Manifest().ID()
	}
	return sc
}

// --- recent files ---

func (u *UI) addRecent(path string) {
	p := u.A.Preferences()
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	list := []string{path}
	for _, x := range p.StringList("recent") {
		if x != path && len(list) < 10 {
			list = append(list, x)
		}
	}
	p.SetStringList("recent", list)
	u.refreshRecent()
}

func (u *UI) refreshRecent() {
	var items []*fyne.MenuItem
	for _, x := range u.A.Preferences().StringList("recent") {
		path := x
		items = append(items, fyne.NewMenuItem(path, func() { u.guardUnsaved(func() { u.Open(path, "") }) }))
	}
	if len(items) == 0 {
		items = append(items, fyne.NewMenuItem("(none)", nil))
	}
	u.recentMenu.ChildMenu.Items = items
}

// --- bundled sample and assets ---

// findAsset looks for assets/<name> next to the binary, above it, and in the working tree.
func findAsset(name string) string {
	var roots []string
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		roots = append(roots, dir, filepath.Dir(dir), filepath.Join(dir, "..", "share", "medsa"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			roots = append(roots, d)
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil || filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, r := range roots {
		p := filepath.Join(r, "assets", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sampleFiles lists the bundled sample images, 3D volumes first.
func sampleFiles() []string {
	dir := findAsset("sample")
	if dir == "" {
		return nil
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return []string{dir}
	}
	ents, _ := os.ReadDir(dir)
	var vols, other []string
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(n, ".md"), strings.HasSuffix(n, ".json"), strings.HasSuffix(n, ".txt"), strings.HasPrefix(n, "."):
		case strings.HasSuffix(n, ".nii.gz"), strings.HasSuffix(n, ".nii"), e.IsDir():
			vols = append(vols, p)
		default:
			other = append(other, p)
		}
	}
	return append(vols, other...)
}

// offerSample asks, at a start without a path, whether to open a bundled sample.
func (u *UI) offerSample() {
	files := sampleFiles()
	if len(files) == 0 {
		u.setMessage("open an image with Ctrl+O")
		return
	}
	u.chooseSample(files, "Welcome to medsa", "Open a bundled sample study?")
}

func (u *UI) chooseSample(files []string, title, text string) {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	choice := files[0]
	radio := widget.NewRadioGroup(names, func(s string) {
		for i, n := range names {
			if n == s {
				choice = files[i]
			}
		}
	})
	radio.SetSelected(names[0])
	dialog.ShowCustomConfirm(title, "Open sample", "Choose a file…", container.NewVBox(widget.NewLabel(text), radio), func(ok bool) {
		if ok {
			u.Open(choice, "")
		} else {
			u.openFileDialog()
		}
	}, u.W)
}

// --- crash recovery ---

func (u *UI) offerRecovery() {
	d := u.doc
	if d == nil || u.opt.NoRecovery || u.opt.RecoveryDir == "" {
		return
	}
	mask, meta := recoveryPaths(u.opt.RecoveryDir, d.path)
	st, err := os.Stat(mask)
	if err != nil {
		return
	}
	msg := fmt.Sprintf("medsa found unsaved work on this image from %s.\nRecover it?", st.ModTime().Format("2006-01-02 15:04"))
	dialog.ShowConfirm("Recover unsaved work", msg, func(ok bool) {
		if !ok {
			os.Remove(mask)
			os.Remove(meta)
			return
		}
		go func() {
			lm, table, recs, err := loadMask(mask, d.vol)
			fyne.Do(func() {
				if err != nil {
					u.showError(fmt.Errorf("recovery file unusable: %w", err))
					return
				}
				if err := d.sess.LoadLabelMap(lm, table); err != nil {
					u.showError(err)
					return
				}
				d.sess.SetRecords(recs)
				u.setMessage("recovered unsaved work")
				u.updateTitle()
			})
		}()
	}, u.W)
}

func (u *UI) removeRecovery(d *doc) {
	if d == nil || u.opt.RecoveryDir == "" {
		return
	}
	mask, meta := recoveryPaths(u.opt.RecoveryDir, d.path)
	os.Remove(mask)
	os.Remove(meta)
}

// autosaveLoop writes the recovery file every opt.Autosave and after each
// accepted mask, when something changed since the last autosave.
func (u *UI) autosaveLoop() {
	t := time.NewTicker(u.opt.Autosave)
	defer t.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-t.C:
		case <-u.autosaveKick:
		}
		var d *doc
		var saved uint64
		fyne.DoAndWait(func() {
			if d = u.doc; d != nil {
				saved = d.savedGen
			}
		})
		if d == nil || u.opt.RecoveryDir == "" {
			continue
		}
		gen := d.sess.Generation()
		if gen == d.autoGen || gen == saved {
			continue
		}
		if err := os.MkdirAll(u.opt.RecoveryDir, 0o755); err != nil {
			u.logf("autosave: %v", err)
			continue
		}
		lm, table, recs, g := d.sess.SnapshotLabels()
		mask, _ := recoveryPaths(u.opt.RecoveryDir, d.path)
		if err := saveMask(mask, lm, table, u.meta(d, table, recs), nil); err != nil {
			u.logf("autosave: %v", err)
			continue
		}
		d.autoGen = g
		u.state.event("autosaved", mask)
	}
}

func (u *UI) kickAutosave() {
	select {
	case u.autosaveKick <- struct{}{}:
	default:
	}
}
