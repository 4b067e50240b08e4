package dicomseg

import (
	"errors"
	"fmt"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

// SourceFor reads the references of the DICOM series under path that v was
// read from: series seriesUID, or, when it is "" and path holds several, the one
// whose grid is v's. It fails when no series there has v's grid.
func SourceFor(path, seriesUID string, v *volume.Volume) (*dicom.SourceRefs, error) {
	r, err := dicom.ReadRefs([]string{path}, seriesUID)
	var multi *dicom.MultipleSeriesError
	if errors.As(err, &multi) && v != nil {
		for _, s := range multi.Series {
			c, err := dicom.ReadRefs([]string{path}, s.UID)
			if err == nil && volume.SameGrid(v.Size, v.Affine, c.Size, c.Affine, mask.GridTolMM) == "" {
				return c, nil
			}
		}
		return nil, fmt.Errorf("%s: none of its %d series has the grid of the open image", path, len(multi.Series))
	}
	if err != nil {
		return nil, err
	}
	if v != nil {
		if d := volume.SameGrid(v.Size, v.Affine, r.Size, r.Affine, mask.GridTolMM); d != "" {
			return nil, fmt.Errorf("%s: the DICOM series is not the open image's grid: %s", path, d)
		}
	}
	return r, nil
}
