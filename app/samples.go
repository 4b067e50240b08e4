package app

// The bundled sample studies offered at a start without a path.

import (
	"log"
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

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
	ents, err := os.ReadDir(dir)
	if err != nil {
		log.Printf("medsa: samples: %v", err)
		return nil
	}
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
