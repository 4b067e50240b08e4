package app

// Save as DICOM-SEG, and opening one as a mask: the labels as a DICOM
// Segmentation referencing the open DICOM series (io/dicomseg).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"

	"github.com/medsa/medsa/io/dicomseg"
	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// The Open mask dialog lists DICOM-SEG files too (loadMask reads them).
func init() { maskFileExts = append(maskFileExts, ".dcm") }

// SaveDICOMSEG asks for a path and writes the labels there as a DICOM-SEG.
func (u *UI) SaveDICOMSEG() {
	d := u.doc
	if d == nil {
		return
	}
	if fm, err := load.Detect(segSource(d)); err != nil || fm != load.DICOM {
		u.showError(fmt.Errorf("Save as DICOM-SEG needs an image opened from DICOM files; %s is not one.\n\nSave the mask as NIfTI instead", filepath.Base(d.path)))
		return
	}
	fd := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			u.showError(err)
			return
		}
		w.Close()
		p := w.URI().Path()
		if !strings.HasSuffix(strings.ToLower(p), ".dcm") {
			os.Remove(p)
			p += ".dcm"
		}
		u.saveSEGTo(d, p)
	}, u.W)
	fd.SetFileName(strings.TrimSuffix(studyName(d.vol, d.path), ".dcm") + "_seg.dcm")
	fd.SetFilter(storage.NewExtensionFileFilter([]string{".dcm"}))
	fd.Resize(fyne.NewSize(900, 600))
	fd.Show()
}

// saveSEGTo snapshots the labels and writes the DICOM-SEG in the background.
// It is an export: the mask's own save path and saved state do not change.
func (u *UI) saveSEGTo(d *doc, path string) {
	u.setMessage("saving %s…", filepath.Base(path))
	go func() {
		t0 := time.Now()
		lm, table, recs, _ := d.sess.SnapshotLabels()
		err := saveSEG(path, segSource(d), d.vol, lm, table, u.meta(d, table, recs))
		ms := time.Since(t0).Milliseconds()
		fyne.Do(func() {
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

// segSource is the folder of the DICOM files a document was read from: for a series
// opened from a PACS, its instances in the local cache.
func segSource(d *doc) string {
	if dicomweb.IsSeriesURL(d.path) && d.vol.Source != "" {
		return d.vol.Source
	}
	return d.path
}

// SaveToPACS sends the labels as a DICOM-SEG (STOW-RS) to the server the series came
// from, in the background, and shows the server's answer.
func (u *UI) SaveToPACS() {
	d := u.doc
	if d == nil {
		return
	}
	ref, err := dicomweb.ParseSeriesURL(d.path)
	if err != nil {
		u.showError(fmt.Errorf("Save to PACS needs a series opened from a PACS (File → Open from PACS…); %s was opened from files.\n\nUse Save as DICOM-SEG and send the file with medsa pacs push", filepath.Base(d.path)))
		return
	}
	u.setMessage("sending the segmentation to %s…", ref.Root)
	go func() {
		tmp, err := os.MkdirTemp("", "medsa-stow-*")
		if err == nil {
			defer os.RemoveAll(tmp)
			var res *dicomweb.StoreResult
			file := filepath.Join(tmp, "seg.dcm")
			lm, table, recs, _ := d.sess.SnapshotLabels()
			if err = saveSEG(file, segSource(d), d.vol, lm, table, u.meta(d, table, recs)); err == nil {
				res, err = storeFile(ref.Root, file)
			}
			fyne.Do(func() {
				if err != nil {
					u.showError(fmt.Errorf("save to PACS: %w", err))
					return
				}
				u.setMessage("the PACS stored the segmentation (%s)", strings.Join(res.Stored, " "))
				u.logf("stored DICOM-SEG on %s: %v %v", ref.Root, res.Stored, res.Warnings)
				u.state.event("stored_seg", res.Stored)
			})
			return
		}
		fyne.Do(func() { u.showError(fmt.Errorf("save to PACS: %w", err)) })
	}()
}

func storeFile(root, file string) (*dicomweb.StoreResult, error) {
	cfg, err := dicomweb.LoadConfig(dicomweb.ConfigPath())
	if err != nil {
		return nil, err
	}
	c, err := dicomweb.NewClient(cfg.Lookup(root))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return c.Store(ctx, b)
}

// saveSEG writes lm (on vol, read from the DICOM files at source) as a
// DICOM-SEG; the sidecar meta says which labels came from the model.
func saveSEG(path, source string, vol *volume.Volume, lm *volume.LabelMap, table []volume.Label, meta *Meta) error {
	refs, err := dicomseg.SourceFor(source, "", vol)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	segs, model := dicomseg.SegmentsFromMeta(table, raw)
	return dicomseg.Write(path, lm, refs, dicomseg.Options{Segments: segs, Model: model, SeriesDescription: "medsa segmentation"})
}

// loadSEG places a DICOM-SEG on vol, which must have been read from DICOM
// files that are still there (the SEG is placed by their positions).
func loadSEG(path string, vol *volume.Volume) (*volume.LabelMap, []volume.Label, error) {
	refs, err := dicomseg.SourceFor(vol.Source, "", vol)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: a DICOM-SEG opens over the DICOM series it was made on: %w", path, err)
	}
	res, err := dicomseg.Read(path, refs)
	if err != nil {
		return nil, nil, err
	}
	return res.LabelMap, res.Labels, nil
}
