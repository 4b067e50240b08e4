//go:build unix

package load

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/raster"
)

// Issue 14, 9: a named pipe as PATH is refused at once (opening it would block
// until something writes to it: info, convert and segment hung).
func TestNamedPipeRefused(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"pipe.nii.gz", "pipe.png"} {
		p := filepath.Join(dir, name)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skip(err)
		}
		for what, open := range map[string]func() error{
			"Open":        func() error { _, err := Open(p, Options{}); return err },
			"nifti.Read":  func() error { _, err := nifti.Read(p); return err },
			"raster.Read": func() error { _, err := raster.Read(p); return err },
		} {
			done := make(chan error, 1)
			go func() { done <- open() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "regular file") && !strings.Contains(err.Error(), "named pipe") {
					t.Errorf("%s %s: %v", what, name, err)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("%s %s: still blocked after 3 s", what, name) // the goroutine stays blocked
			}
		}
	}
}
