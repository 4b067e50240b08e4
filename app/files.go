package app

// Files: the open, save and export dialogs, unsaved-changes guards, recent files.

import (
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"

	"github.com/medsa/medsa/workspace"
)

func (u *UI) dirty() bool { return u.doc != nil && u.doc.Dirty() }

// guardUnsaved runs f now, or after the user agreed to drop unsaved changes.
func (u *UI) guardUnsaved(f func()) {
	if !u.dirty() {
		f()
		return
	}
	dialog.ShowConfirm("Unsaved changes", "The mask has unsaved changes. Discard them?", func(ok bool) {
		if ok {
			u.ws.RemoveRecovery(u.doc.Doc)
			u.doc.MarkSaved()
			f()
		}
	}, u.W)
}

func (u *UI) closeIntercept() {
	u.guardUnsaved(func() {
		u.ws.Close()
		u.W.Close()
	})
}

// removeTemp removes the empty file a save dialog created before the name got
// its extension; a failure is only worth a log line.
func (u *UI) removeTemp(p string) {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		u.logf("remove %s: %v", p, err)
	}
}

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
	if u.doc == nil {
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
	if d := u.doc; d != nil {
		u.ws.OpenMask(d.Doc, path)
	}
}

// Save writes the mask to its path (asks for one the first time).
func (u *UI) Save() {
	d := u.doc
	if d == nil {
		return
	}
	p := d.SavePath()
	if p == "" {
		u.SaveAs()
		return
	}
	u.saveTo(d, p, nil)
}

// maskFileExts are what the mask dialogs list (io/mask reads and writes them all;
// ".gz" covers .nii.gz, ".nrrd" covers Slicer's .seg.nrrd; ".dcm" a DICOM-SEG).
var maskFileExts = []string{".gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".dcm"}

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
			u.removeTemp(p)
			p += ".nii.gz"
		}
		d.SetSavePath(p)
		u.saveTo(d, p, nil)
	}, u.W)
	fd.SetFileName(strings.TrimSuffix(strings.TrimSuffix(d.Name(), ".gz"), ".nii") + "_mask.nii.gz")
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
			u.removeTemp(p)
			p += ".png"
		}
		k := d.view.Key()
		u.saveTo(d, p, &workspace.PNGSlice{Axis: d.Axis(k.Plane), Index: k.Index})
	}, u.W)
	fd.SetFileName("mask_slice.png")
	fd.Show()
}

// saveTo writes the labels in the background (the Saved event reports).
func (u *UI) saveTo(d *doc, path string, ps *workspace.PNGSlice) {
	u.setMessage("saving %s…", filepath.Base(path))
	u.ws.Save(d.Doc, path, ps)
}

// --- recent files ---

func (u *UI) addRecent(path string) {
	p := u.A.Preferences()
	if abs, err := filepath.Abs(path); err == nil && !strings.Contains(path, "://") {
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
