package main

import (
	"flag"
	"fmt"

	"github.com/medsa/medsa/app"
	_ "github.com/medsa/medsa/internal/quietlocale" // before Fyne reads the locale
)

// runGUI opens the main window: `medsa [flags] [PATH]`.
func runGUI(args []string) error {
	fs := flag.NewFlagSet("medsa", flag.ContinueOnError)
	var opt app.Options
	fs.StringVar(&opt.ModelDir, "model", "", "model directory (default: $MEDSA_MODEL_DIR, then assets/model)")
	fs.StringVar(&opt.Device, "device", "", "auto, cuda or cpu (default auto)")
	fs.StringVar(&opt.SeriesUID, "series", "", "DICOM series UID to open from a folder with several")
	fs.StringVar(&opt.SavePath, "save", "", "where Ctrl+S saves the mask without asking (default: $MEDSA_SAVE_PATH)")
	fs.StringVar(&opt.MaskPath, "mask", "", "a saved mask (.nii.gz) to open on the image")
	fs.BoolVar(&opt.NoRecovery, "no-recovery", false, "do not offer to recover unsaved work")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
	case 1:
		opt.Path = fs.Arg(0)
	default:
		return fmt.Errorf("one image at a time (got %d paths)", fs.NArg())
	}
	return app.Run(opt)
}
