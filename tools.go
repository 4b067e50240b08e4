//go:build tools

// This file pins the modules medsa's packages use, so go.mod stays stable while they are written.
package main

import (
	_ "fyne.io/fyne/v2"
	_ "github.com/disintegration/imaging"
	_ "github.com/klauspost/pgzip"
	_ "github.com/okieraised/gonii"
	_ "github.com/suyashkumar/dicom"
	_ "github.com/yalue/onnxruntime_go"
	_ "golang.org/x/image/tiff"
)
