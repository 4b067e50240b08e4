package app

import (
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"
)

// askSavePath asks for a folder, then a file name, and calls done with the path; an
// existing file is replaced only after a confirmation. Fyne's file-save dialog is not used
// because it opens (truncates) the chosen file before it returns: a mask saved over an
// existing one would be emptied before the atomic save even started.
func (u *UI) askSavePath(title, name string, exts []string, defExt string, done func(path string)) {
	fo := dialog.NewFolderOpen(func(dir fyne.ListableURI, err error) {
		if err != nil {
			u.showError(err)
			return
		}
		if dir == nil {
			return
		}
		entry := widget.NewEntry()
		entry.SetText(name)
		dialog.ShowForm(title, "Save", "Cancel", []*widget.FormItem{widget.NewFormItem("File name in "+dir.Path(), entry)}, func(ok bool) {
			n := strings.TrimSpace(entry.Text)
			if !ok || n == "" {
				return
			}
			p := filepath.Join(dir.Path(), filepath.Base(n))
			if !hasExt(p, exts) {
				p += defExt
			}
			if _, err := os.Stat(p); err == nil {
				dialog.ShowConfirm("Replace "+filepath.Base(p)+"?", p+" exists. Replace it (the old file stays until the new one is complete)?", func(yes bool) {
					if yes {
						done(p)
					}
				}, u.W)
				return
			}
			done(p)
		}, u.W)
	}, u.W)
	if d := u.doc; d != nil && d.SavePath() != "" {
		if l, err := storage.ListerForURI(storage.NewFileURI(filepath.Dir(d.SavePath()))); err == nil {
			fo.SetLocation(l)
		}
	}
	fo.Resize(fyne.NewSize(900, 600))
	fo.Show()
}

func hasExt(p string, exts []string) bool {
	l := strings.ToLower(p)
	for _, e := range exts {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}
