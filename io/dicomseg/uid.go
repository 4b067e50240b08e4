package dicomseg

import (
	"crypto/rand"
	"math/big"
)

const (
	// SOPClassSegmentation is the Segmentation Storage SOP Class.
	SOPClassSegmentation = "1.2.840.10008.5.1.4.1.1.66.4"

	explicitVRLittleEndian = "1.2.840.10008.1.2.1"

	// ImplementationClassUID names medsa as the writer in the File Meta
	// Information: "2.25." + the first 120 bits of sha1("medsa-impl") as a
	// decimal, the same UID scripts/referee/make_dicom_series.py writes.
	ImplementationClassUID = "2.25.937219007025898449838002657041891087"
	// ImplementationVersionName is "MEDSA_" + the version (SH, at most 16 characters).
	ImplementationVersionName = "MEDSA_" + Version
	// Version is medsa's version as SoftwareVersions records it (FyneApp.toml).
	Version = "0.1.0"
)

// NewUID returns a fresh UID under the 2.25 root: a random (version 4) UUID
// written as one decimal integer (PS3.5 B.2).
func NewUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return "2.25." + new(big.Int).SetBytes(b[:]).String()
}
