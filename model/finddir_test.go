package model

import "testing"

// TestFindModelDirEnv: $MEDSA_MODEL_DIR first, the deprecated $MEDSA_MODEL
// still honoured, an explicit directory over both.
func TestFindModelDirEnv(t *testing.T) {
	cases := []struct{ explicit, dirVar, oldVar, want string }{
		{"", "/new", "", "/new"},
		{"", "", "/old", "/old"},
		{"", "/new", "/old", "/new"},
		{"/flag", "/new", "/old", "/flag"},
	}
	for _, c := range cases {
		t.Setenv("MEDSA_MODEL_DIR", c.dirVar)
		t.Setenv("MEDSA_MODEL", c.oldVar)
		got, err := FindModelDir(c.explicit)
		if err != nil || got != c.want {
			t.Errorf("FindModelDir(%q) with MEDSA_MODEL_DIR=%q MEDSA_MODEL=%q = %q, %v; want %q", c.explicit, c.dirVar, c.oldVar, got, err, c.want)
		}
	}
}
