package main

import (
	"flag"
	"fmt"

	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/nifti"
)

// runConvert writes the image at PATH as NIfTI, NRRD or MetaImage (by OUT's
// extension) with the affine `medsa info` prints.
func runConvert(args []string) error {
	var force bool
	pos, opt, err := parseImageArgs("convert", args, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace OUT even when it is read-only")
	})
	if err != nil {
		return fmt.Errorf("%v (%v)", err, errUsageConvert)
	}
	if err := checkOutput(pos[1], force); err != nil {
		return err
	}
	v, err := load.Open(pos[0], opt)
	if list, ok := load.MultipleSeries(err); ok {
		return fmt.Errorf("%s holds %d series: choose one with --series UID (see medsa info %s)", pos[0], len(list), pos[0])
	}
	if err != nil {
		return err
	}
	printNotes(v)
	opts := []nifti.Option{nifti.Description("medsa convert")}
	if fm, _ := load.Detect(pos[0]); fm == load.DICOM && v.Channels == 1 {
		switch v.DataType {
		case "uint8", "int16", "uint16", "int32":
			// The DICOM reader derives these from the stored bits and an integral
			// rescale, so every value is an integer in range: skip the writer's scan.
			opts = append(opts, nifti.DataType(v.DataType))
		}
	}
	return load.SaveVolume(pos[1], v, opts...) // the format by extension: .nii[.gz], .nrrd, .mha, .mhd
}
