package load

import (
	"strings"

	"github.com/medsa/medsa/io/metaimage"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/nrrd"
	"github.com/medsa/medsa/io/volume"
)

// SaveVolume writes v in the format its path names: .nrrd (gzip, LPS), .mha or
// .mhd (+ .zraw, compressed), else NIfTI (.nii, .nii.gz; opts apply there only).
func SaveVolume(path string, v *volume.Volume, opts ...nifti.Option) error {
	l := strings.ToLower(path)
	switch {
	case strings.HasSuffix(l, ".nrrd"):
		return nrrd.WriteVolume(path, v)
	case strings.HasSuffix(l, ".mha") || strings.HasSuffix(l, ".mhd"):
		return metaimage.WriteVolume(path, v)
	}
	return nifti.WriteVolume(path, v, opts...)
}
