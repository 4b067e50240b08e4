package load

import (
	"github.com/medsa/medsa/io/raster"
	"github.com/medsa/medsa/io/volume"
)

func readRaster(path string) (*volume.Volume, error) { return raster.Read(path) }
