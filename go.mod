module github.com/medsa/medsa

go 1.26.8

require (
	fyne.io/fyne/v2 v2.7.1
	github.com/disintegration/imaging v1.6.2
	github.com/klauspost/pgzip v1.2.5
	github.com/okieraised/gonii v0.9.0
	github.com/suyashkumar/dicom v1.1.0
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/image v0.24.0
)

require (
	github.com/klauspost/compress v1.15.15 // indirect
	golang.org/x/exp v0.0.0-20240525044651-4c93da0ed11d // indirect
	golang.org/x/text v0.22.0 // indirect
)
