package app

// Save as DICOM-SEG and Save to PACS: the dialogs around the workspace's
// ExportSEG and StoreSEG (Open mask reads a DICOM-SEG through workspace.LoadMask).

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/load"
)

// SaveDICOMSEG asks for a path and writes the labels there as a DICOM-SEG.
func (u *UI) SaveDICOMSEG() {
	d := u.doc
	if d == nil {
		return
	}
	if fm, err := load.Detect(d.SEGSource()); err != nil || fm != load.DICOM {
		u.showError(fmt.Errorf("Save as DICOM-SEG needs an image opened from DICOM files; %s is not one.\n\nSave the mask as NIfTI instead", filepath.Base(d.Path)))
		return
	}
	u.askSavePath("Save as DICOM-SEG", strings.TrimSuffix(d.Name(), ".dcm")+"_seg.dcm", []string{".dcm"}, ".dcm", func(p string) {
		u.saveSEGTo(d, p)
	})
}

// saveSEGTo writes the DICOM-SEG in the background. It is an export: the
// mask's own save path and saved state do not change.
func (u *UI) saveSEGTo(d *doc, path string) {
	u.setMessage("saving %s…", filepath.Base(path))
	go func() {
		t0 := time.Now()
		err := u.ws.ExportSEG(d.Doc, path)
		ms := time.Since(t0).Milliseconds()
		u.do(func() {
			if err != nil {
				u.showError(fmt.Errorf("%w\n\nChoose another folder or name, or save the mask as NIfTI", err))
				return
			}
			u.setMessage("saved DICOM-SEG %s (%d ms)", filepath.Base(path), ms)
			u.logf("saved DICOM-SEG %s in %d ms", path, ms)
			u.state.event("saved_seg", path)
		})
	}()
}

// SaveToPACS sends the labels as a DICOM-SEG (STOW-RS) to the server the series came
// from, in the background, and shows the server's answer.
func (u *UI) SaveToPACS() {
	d := u.doc
	if d == nil {
		return
	}
	ref, err := dicomweb.ParseSeriesURL(d.Path)
	if err != nil {
		u.showError(fmt.Errorf("Save to PACS needs a series opened from a PACS (File → Open from PACS…); %s was opened from files.\n\nUse Save as DICOM-SEG and send the file with medsa pacs push", filepath.Base(d.Path)))
		return
	}
	u.setMessage("sending the segmentation to %s…", ref.Root)
	go func() {
		res, err := u.ws.StoreSEG(d.Doc)
		u.do(func() {
			if err != nil {
				u.showError(fmt.Errorf("save to PACS: %w", err))
				return
			}
			u.setMessage("the PACS stored the segmentation (%s)", strings.Join(res.Stored, " "))
			u.logf("stored DICOM-SEG on %s: %v %v", ref.Root, res.Stored, res.Warnings)
			u.state.event("stored_seg", res.Stored)
		})
	}()
}
