package load

import (
	"fmt"

	"github.com/medsa/medsa/io/volume"
)

// readRaster is replaced when io/raster lands.
func readRaster(path string) (*volume.Volume, error) {
	return nil, fmt.Errorf("%s: 2D images are not readable yet (io/raster missing)", path)
}
