package workspace

// DICOM-SEG: the labels as a DICOM Segmentation referencing the open DICOM
// series (io/dicomseg), saved to a file or stored on the PACS it came from.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/medsa/medsa/io/dicomseg"
	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/volume"
)

// SEGSource is the folder of the DICOM files d was read from: for a series
// opened from a PACS, its instances in the local cache.
func (d *Doc) SEGSource() string {
	if dicomweb.IsSeriesURL(d.Path) && d.Vol.Source != "" {
		return d.Vol.Source
	}
	return d.Path
}

// SaveSEG writes lm (on vol, read from the DICOM files at source) as a
// DICOM-SEG; the sidecar meta says which labels came from the model.
func SaveSEG(path, source string, vol *volume.Volume, lm *volume.LabelMap, table []volume.Label, meta *Meta) error {
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

// LoadSEG places a DICOM-SEG on vol, which must have been read from DICOM
// files that are still there (the SEG is placed by their positions).
func LoadSEG(path string, vol *volume.Volume) (*volume.LabelMap, []volume.Label, error) {
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

// ExportSEG writes d's labels as a DICOM-SEG at path (an export: the saved
// state does not change). It blocks: run it off the UI goroutine.
func (w *Workspace) ExportSEG(d *Doc, path string) error {
	lm, table, recs, _ := d.Sess.SnapshotLabels()
	return SaveSEG(path, d.SEGSource(), d.Vol, lm, table, w.Meta(d, table, recs))
}

// StoreSEG sends d's labels as a DICOM-SEG (STOW-RS) to the server its series
// came from. It blocks: run it off the UI goroutine.
func (w *Workspace) StoreSEG(d *Doc) (*dicomweb.StoreResult, error) {
	ref, err := dicomweb.ParseSeriesURL(d.Path)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "medsa-stow-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "seg.dcm")
	if err := w.ExportSEG(d, file); err != nil {
		return nil, err
	}
	cfg, err := dicomweb.LoadConfig(dicomweb.ConfigPath())
	if err != nil {
		return nil, err
	}
	c, err := dicomweb.NewClient(cfg.Lookup(ref.Root))
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
