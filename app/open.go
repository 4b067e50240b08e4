package app

import (
	"fmt"
	"path/filepath"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/dicomweb"
)

// Open loads path in the background (a dialog with Cancel), then shows it. A
// folder with several DICOM series asks which one.
func (u *UI) Open(path, seriesUID string) {
	u.hideOpenDialog()
	var body fyne.CanvasObject
	title := "Opening " + filepath.Base(path)
	if dicomweb.IsSeriesURL(path) {
		// A series from a PACS: a determinate bar over the instances.
		u.openBar = widget.NewProgressBar()
		body = container.NewVBox(widget.NewLabel(path), u.openBar)
		title = "Retrieving from the PACS"
	} else {
		body = container.NewVBox(widget.NewLabel(path), widget.NewProgressBarInfinite())
	}
	dlg := dialog.NewCustom(title, "Cancel", body, u.W)
	u.openDlg = dlg
	cancel := u.ws.Open(path, seriesUID)
	// The Cancel button; hiding the dialog once the open ended cancels nothing.
	dlg.SetOnClosed(func() {
		if u.openDlg == dlg {
			u.openDlg, u.openBar = nil, nil
			cancel()
		}
	})
	dlg.Show()
}

// hideOpenDialog closes the open's dialog without cancelling it.
func (u *UI) hideOpenDialog() {
	if dlg := u.openDlg; dlg != nil {
		u.openDlg, u.openBar = nil, nil
		dlg.Hide()
	}
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
