// Package atomicfile replaces a file atomically: the new content is written to a
// temporary file in the same folder, synced, and renamed over the target, and the
// folder is synced. A crash or an error at any point leaves the previous file intact.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write calls write with a buffered writer on a temporary file next to path, then
// makes that file path. On any error the temporary file is removed and an existing
// file at path is left untouched. An existing file's permissions are kept; a new
// file gets 0644.
func Write(path string, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if st, serr := os.Stat(path); serr == nil {
		if st.IsDir() {
			return fmt.Errorf("save %s: is a folder", path)
		}
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	// The rename is durable only once the folder's entry is on disk.
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil && !errors.Is(serr, os.ErrInvalid) {
			return fmt.Errorf("save %s: sync folder: %w", path, serr)
		}
	}
	return nil
}

// WriteFile is Write for a byte slice.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
