// Package testfiles locates the repository and its fetched test images for tests.
// Images live in .cache/testdata (scripts/testdata.sh); a test that needs a missing
// one is skipped, or fails when MEDSA_REQUIRE_TESTDATA is set (as `make test` does),
// so CI can never pass by skipping.
package testfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root: the first folder holding go.mod above the
// working directory (go test runs in the package's folder).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repo root (go.mod) not found above the working directory")
		}
		dir = parent
	}
}

// Need skips the test when path is absent, or fails it when MEDSA_REQUIRE_TESTDATA is set.
func Need(t testing.TB, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("MEDSA_REQUIRE_TESTDATA") != "" {
			t.Fatalf("%s missing: %s (run make testdata)", what, path)
		}
		t.Skipf("%s missing: %s (run make testdata)", what, path)
	}
}

// Path returns .cache/testdata/rel under the repository root, after Need.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), ".cache", "testdata", rel)
	Need(t, p, "test data")
	return p
}
