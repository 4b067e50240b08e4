package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func content(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// Commit of several files is all or nothing (issue 14, 7: a mask replaced while
// its sidecar could not be written).
func TestCommitAllOrNothing(t *testing.T) {
	noLinks := func(string, string) error { return &os.LinkError{Op: "link", Err: errors.New("not supported")} }
	for _, mode := range []string{"hard link", "rename aside"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "rename aside" {
				link = noLinks
				defer func() { link = os.Link }()
			}
			dir := t.TempDir()
			a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
			os.WriteFile(a, []byte("old a"), 0o644)
			// b does not exist yet; c is replaced by a folder between Create and Commit
			pa, err := Create(a, content("new a"))
			if err != nil {
				t.Fatal(err)
			}
			pb, err := Create(b, content("new b"))
			if err != nil {
				t.Fatal(err)
			}
			pc, err := Create(c, content("new c"))
			if err != nil {
				t.Fatal(err)
			}
			os.Mkdir(c, 0o755)
			os.WriteFile(filepath.Join(c, "inside"), nil, 0o644)
			err = Commit(pa, pb, pc)
			if err == nil || !strings.Contains(err.Error(), c) {
				t.Fatalf("commit: %v", err)
			}
			if got, _ := os.ReadFile(a); string(got) != "old a" {
				t.Errorf("a = %q, want the old content back", got)
			}
			if _, err := os.Stat(b); !os.IsNotExist(err) {
				t.Errorf("b exists after a failed commit")
			}
			if got := entries(t, dir); strings.Join(got, " ") != "a c" {
				t.Errorf("left: %v", got)
			}
			// And when nothing is in the way, all are replaced and nothing is left.
			os.RemoveAll(c)
			pa, _ = Create(a, content("new a"))
			pb, _ = Create(b, content("new b"))
			if err := Commit(pa, pb); err != nil {
				t.Fatal(err)
			}
			ga, _ := os.ReadFile(a)
			gb, _ := os.ReadFile(b)
			if string(ga) != "new a" || string(gb) != "new b" || strings.Join(entries(t, dir), " ") != "a b" {
				t.Errorf("a %q b %q, folder %v", ga, gb, entries(t, dir))
			}
		})
	}
}
