//go:build race

package nifti

// raceOn: the race detector slows voxel loops ~20x; big-file cases run only without it.
const raceOn = true
