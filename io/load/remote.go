package load

import (
	"fmt"

	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/internal/ctxio"
)

// Resolve turns a DICOMweb series URL into the local folder of its cached instances
// (retrieving what the cache lacks, verifying what it has); any other path is returned
// unchanged. Open does this itself; writers that need the source files (DICOM-SEG) call it.
func Resolve(path string, opt Options) (string, error) { return resolve(path, opt) }

func resolve(path string, opt Options) (string, error) {
	if !dicomweb.IsSeriesURL(path) {
		return path, nil
	}
	ref, err := dicomweb.ParseSeriesURL(path)
	if err != nil {
		return "", err
	}
	cfg, err := dicomweb.LoadConfig(dicomweb.ConfigPath())
	if err != nil {
		return "", err
	}
	c, err := dicomweb.NewClient(cfg.Lookup(ref.Root))
	if err != nil {
		return "", err
	}
	ctx := ctxio.OrBackground(opt.Context)
	dir, err := c.Retrieve(ctx, ref.Study, ref.Series, opt.Progress)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", ref.Root+"/studies/"+ref.Study+"/series/"+ref.Series, err)
	}
	return dir, nil
}
