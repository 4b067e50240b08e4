package app

// Files: the open, save and export dialogs, unsaved-changes guards, recent files.

import (
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

// SaveAs asks for a path (the mask's format follows its extension).
func (u *UI) SaveAs() {
	d := u.doc
	if d == nil {
		return
	}
	name := strings.TrimSuffix(strings.TrimSuffix(d.Name(), ".gz"), ".nii") + "_mask.nii.gz"
	exts := []string{".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd", ".png"}
	u.askSavePath("Save mask as", name, exts, ".nii.gz", func(p string) {
		d.SetSavePath(p)
		u.saveTo(d, p, nil)
	})
}

func (u *UI) exportPNG() {
	d := u.doc
	if d == nil {
		return
	}
	u.askSavePath("Export slice as PNG", "mask_slice.png", []string{".png"}, ".png", func(p string) {
		k := d.view.Key()
		u.saveTo(d, p, &workspace.PNGSlice{Axis: d.Axis(k.Plane), Index: k.Index})
	})
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
