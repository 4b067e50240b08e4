package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/medsa/medsa/io/dicomseg"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// isDICOMSEG reports an output path that names a DICOM-SEG (.dcm).
func isDICOMSEG(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".dcm") }

// checkDICOMSEGSource refuses, before any work, a DICOM-SEG output for a source
// that is not DICOM (a SEG references the source's instances).
func checkDICOMSEGSource(out, image string) error {
	if fm, err := load.Detect(image); err == nil && fm != load.DICOM {
		return fmt.Errorf("%s: a DICOM-SEG (.dcm) needs a DICOM source, and %s is %s: write .nii.gz instead", out, image, fm)
	}
	return nil
}

// saveDICOMSEG writes lm, made on v read from image (series), as a DICOM-SEG;
// how each label was made comes from meta, as the mask sidecar would record it.
func saveDICOMSEG(out, image, series string, v *volume.Volume, lm *volume.LabelMap, labels []volume.Label, meta any) error {
	local, err := load.Resolve(image, load.Options{}) // a PACS series: its cached instances
	if err != nil {
		return fmt.Errorf("save %s: %w", out, err)
	}
	refs, err := dicomseg.SourceFor(local, series, v)
	if err != nil {
		return fmt.Errorf("save %s: %w", out, err)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("save %s: meta: %w", out, err)
	}
	segs, model := dicomseg.SegmentsFromMeta(labels, raw)
	return dicomseg.Write(out, lm, refs, dicomseg.Options{Segments: segs, Model: model, SeriesDescription: "medsa segmentation"})
}
