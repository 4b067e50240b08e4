// Package dicom reads DICOM series (a folder, recursively, or a list of files)
// into a volume.Volume with exact geometry.
//
// Reading is two passes. The first parses each file's header only (a bounded
// walker that stops at the top-level PixelData and records its offset; every
// claimed length is checked against the bytes present) and groups files by
// SeriesInstanceUID: ListSeries reports them, ReadSeries reads one. The second
// reads and decodes the pixels of the chosen series only, files in parallel.
//
// Geometry: frames (single-frame files, or the frames of enhanced multi-frame
// files via their per-frame/shared functional groups) are sorted by position
// along the slice normal (row cosine x column cosine, dotted with
// ImagePositionPatient), never by InstanceNumber or file name; spacing comes from
// positions, not SliceThickness. Gaps, duplicate positions (several volumes),
// non-uniform spacing and gantry tilt are reported in Volume.Notes. The affine
// maps (i, j, k) to RAS+ mm: i runs along DICOM columns (the row cosine, scaled by
// the column spacing PixelSpacing[1]), j along rows, k along the sorted slices;
// LPS is converted to RAS once, here. It equals dcm2niix's geometry for the same
// series (scripts/test.d/dicom-referee.sh checks it). Images without a position
// are centred on the origin, as dcm2niix does.
//
// Pixels: RescaleSlope/Intercept applied (HU for CT), per frame; MONOCHROME1
// inverted; RGB, YBR_FULL, YBR_FULL_422 and PALETTE COLOR become 3 channels;
// 1-, 8-, 16- and 32-bit samples. Transfer syntaxes: implicit and explicit VR
// little endian, explicit big endian (8-bit OW word swap included), deflated,
// JPEG baseline and 8-bit extended (Go's image/jpeg), JPEG lossless process 14
// with any predictor and SV1 (our decoder, jpegll.go), RLE lossless (rle.go),
// JPEG 2000 lossless/lossy and High-Throughput JPEG 2000 (OpenJPEG through cgo,
// j2k.go), JPEG-LS lossless/near-lossless (CharLS through cgo, jpegls.go). Each
// codestream's declared size is held to the DICOM header before the C decoder runs,
// and truncated streams are refused. 12-bit JPEG extended and video give an error
// naming the syntax. Default window: WindowCenter/Width, else CT 40/400, else the
// 0.5..99.5 percentiles.
//
// Siemens mosaics (ImageType MOSAIC with NumberOfImagesInMosaic in the CSA header or
// (0019,100A)) are unpacked into their slices with dcm2niix's geometry (mosaic.go);
// a series of mosaics is several volumes, of which the first is shown.
//
// Why not suyashkumar/dicom's parser: it allocates every value from the length
// the file claims (a lying 4 GiB length is a 4 GiB allocation) and does not
// expose where PixelData starts; the tests use it as a second opinion instead.
package dicom
