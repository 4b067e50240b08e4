package main

import (
	"fmt"

	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/nifti"
)

// runConvert writes the image at PATH as NIfTI with the affine `medsa info` prints.
func runConvert(args []string) error {
	pos, opt, err := parseImageArgs("convert", args, 2)
	if err != nil {
		return fmt.Errorf("%v (%v)", err, errUsageConvert)
	}
	v, err := load.Open(pos[0], opt)
	if list, ok := load.MultipleSeries(err); ok {
		return fmt.Errorf("%s holds %d series: choose one with --series UID (see medsa info %s)", pos[0], len(list), pos[0])
	}
	if err != nil {
		return err
	}
	opts := []nifti.Option{nifti.Description("medsa convert")}
	if fm, _ := load.Detect(pos[0]); fm == load.DICOM && v.Channels == 1 {
		switch v.DataType {
		case "uint8", "int16", "uint16", "int32":
			// The DICOM reader derives these from the stored bits and an integral
			// rescale, so every value is an integer in range: skip the writer's scan.
			opts = append(opts, nifti.DataType(v.DataType))
		}
	}
	return nifti.WriteVolume(pos[1], v, opts...)
}
