package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mask.nii.gz")
	boom := errors.New("disk on fire")
	cases := []struct {
		name    string
		write   func(w io.Writer) error
		wantErr bool
		want    string // content afterwards
	}{
		{"create", func(w io.Writer) error { _, err := io.WriteString(w, "first"); return err }, false, "first"},
		{"replace", func(w io.Writer) error { _, err := io.WriteString(w, "second"); return err }, false, "second"},
		// A writer failing half way (a crash during a save) leaves the previous file intact.
		{"fail after writing", func(w io.Writer) error {
			io.WriteString(w, strings.Repeat("x", 3<<20)) // past the buffer: bytes reach the temp file
			return boom
		}, true, "second"},
		{"panic-free empty", func(w io.Writer) error { return nil }, false, ""},
	}
	for _, c := range cases {
		err := Write(p, c.write)
		if (err != nil) != c.wantErr {
			t.Fatalf("%s: err %v", c.name, err)
		}
		if c.wantErr && (!errors.Is(err, boom) || !strings.Contains(err.Error(), p)) {
			t.Errorf("%s: error %v should wrap the cause and name the file", c.name, err)
		}
		got, rerr := os.ReadFile(p)
		if rerr != nil || string(got) != c.want {
			t.Errorf("%s: content %q (%v), want %q", c.name, got, rerr, c.want)
		}
		if names := entries(t, dir); len(names) != 1 {
			t.Errorf("%s: temp files left behind: %v", c.name, names)
		}
	}
}

func TestKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	q := filepath.Join(t.TempDir(), "new.json")
	WriteFile(q, nil)
	if st, _ := os.Stat(q); st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v", st.Mode().Perm())
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	if err := WriteFile(dir, nil); err == nil {
		t.Error("replacing a folder succeeded")
	}
}
