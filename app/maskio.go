package app

import (
	"encoding/json"
	"path/filepath"
	"strings"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

// Meta is what the GUI records in the mask sidecar's "meta": the source, the
// model, the size of each label, and for every accepted mask the prompts,
// model and window that made it (so it can be re-run).
type Meta struct {
	Tool    string                   `json:"tool"`
	Source  string                   `json:"source"`
	Model   string                   `json:"model,omitempty"`
	Volumes map[string]float64       `json:"label_sizes,omitempty"` // "<value> (<unit>)" -> size
	Masks   []interaction.MaskRecord `json:"masks"`
}

// pngSlice says which slice a PNG export holds.
type pngSlice struct {
	Axis, Index int
}

// saveMask writes the label map (NIfTI, or PNG for 2D images / one slice) and its sidecar.
func saveMask(path string, lm *volume.LabelMap, labels []volume.Label, meta *Meta, ps *pngSlice) error {
	if ps != nil && lm.Size[2] != 1 {
		return mask.SaveSlicePNG(path, lm, ps.Axis, ps.Index, labels)
	}
	return mask.Save(path, lm, labels, meta)
}

// loadMask reads a saved mask for editing on vol (it must lie on vol's grid)
// and the records of how its masks were made, when its sidecar has them.
func loadMask(path string, vol *volume.Volume) (*volume.LabelMap, []volume.Label, []interaction.MaskRecord, error) {
	if strings.HasSuffix(strings.ToLower(path), ".dcm") {
		lm, labels, err := loadSEG(path, vol)
		return lm, labels, nil, err
	}
	lm, labels, err := mask.Load(path, vol)
	if err != nil {
		return nil, nil, nil, err
	}
	var recs []interaction.MaskRecord
	if sc, err := mask.ReadSidecar(path); err == nil && sc != nil && len(sc.Meta) > 0 {
		var m Meta
		if json.Unmarshal(sc.Meta, &m) == nil {
			recs = m.Masks
		}
	}
	return lm, labels, recs, nil
}

// recoveryPaths are the autosave files of a source image.
func recoveryPaths(dir, source string) (maskPath, meta string) {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, strings.TrimPrefix(filepath.Clean(source), "/"))
	if len(name) > 120 {
		name = name[len(name)-120:]
	}
	return filepath.Join(dir, name+".recovery.nii.gz"), filepath.Join(dir, name+".recovery.json")
}
