//go:build !race

package nifti

const raceOn = false
