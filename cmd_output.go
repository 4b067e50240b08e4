package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/medsa/medsa/io/volume"
)

// stderr is where notes go (a variable so tests can read them).
var stderr io.Writer = os.Stderr

// printNotes shows what a reader noted about the image (dropped duplicates,
// skipped files, gaps, fallbacks): `info` has them in its JSON, the other
// commands on stderr.
func printNotes(v *volume.Volume) {
	for _, n := range v.Notes {
		fmt.Fprintf(stderr, "medsa: note: %s\n", n)
	}
}

// checkOutput refuses, before any work is done, an output path that cannot or
// should not be replaced: a folder, a pipe or device, a missing folder, or a
// read-only file (unless force: the replaced file keeps its read-only mode).
func checkOutput(path string, force bool) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		dir := filepath.Dir(path)
		ds, derr := os.Stat(dir)
		if derr != nil || !ds.IsDir() {
			return fmt.Errorf("cannot write %s: the folder %s does not exist", path, dir)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot write %s: it is a folder (give a file name)", path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cannot write %s: it is not a regular file (a pipe or a device); medsa replaces files atomically", path)
	}
	if st.Mode().Perm()&0o200 == 0 && !force {
		return fmt.Errorf("%s is read-only (mode %04o): not replacing it; pass --force to replace it anyway", path, st.Mode().Perm())
	}
	return nil
}
