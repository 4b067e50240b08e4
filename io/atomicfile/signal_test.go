//go:build unix

package atomicfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	childEnv  = "ATOMICFILE_TEST_CHILD" // the folder a re-executed test binary saves into
	ignoreEnv = "ATOMICFILE_TEST_NOHUP" // set: the child starts with SIGHUP ignored, as under nohup
)

// saveChild runs in a re-executed test binary: it installs the signal handler,
// starts saving DIR/target (5 MB, like the convert) and, half way, says so
// on stdout and waits to be signalled.
func saveChild(dir string) {
	if os.Getenv(ignoreEnv) != "" {
		signal.Ignore(syscall.SIGHUP)
	}
	HandleSignals()
	err := Write(filepath.Join(dir, "target"), func(w io.Writer) error {
		chunk := bytes.Repeat([]byte("new "), 1<<18)
		for i := 0; i < 3; i++ {
			w.Write(chunk)
		}
		w.(interface{ Flush() error }).Flush()
		fmt.Println("saving")
		time.Sleep(time.Minute)
		return nil
	})
	fmt.Println("unexpected end:", err)
	os.Exit(3)
}

// startSaver re-executes the test binary as a saveChild and waits until it is
// half way through its save.
func startSaver(t *testing.T, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalRemovesTemps$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "saving\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	return cmd
}

func temps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range entries(t, dir) {
		if strings.HasPrefix(n, ".target.tmp-") {
			out = append(out, n)
		}
	}
	return out
}

// Issue 14, 6: a save interrupted by SIGTERM, SIGINT or SIGHUP leaves no temporary
// file, the old target intact, and the process dies of the signal.
func TestSignalRemovesTemps(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		saveChild(dir)
		return
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			if signal.Ignored(sig) {
				// Inherited by the child, which then keeps ignoring it
				// (TestIgnoredHangupStaysIgnored).
				t.Skipf("this test process was started with %v ignored (nohup?)", sig)
			}
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			os.WriteFile(target, []byte("old"), 0o644)
			cmd := startSaver(t, dir)
			if len(temps(t, dir)) != 1 {
				t.Errorf("mid-save: %v", entries(t, dir))
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("child ended with %v (%v), want death by %v", cmd.ProcessState, err, sig)
			}
			if left := temps(t, dir); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
			if b, _ := os.ReadFile(target); string(b) != "old" {
				t.Errorf("target = %q", b)
			}
		})
	}
}

// A process started with SIGHUP ignored (nohup) keeps ignoring it while it
// saves; SIGTERM still cleans up and ends it.
func TestIgnoredHangupStaysIgnored(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("old"), 0o644)
	cmd := startSaver(t, dir, ignoreEnv+"=1")
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if len(temps(t, dir)) != 1 {
		t.Errorf("after SIGHUP under nohup: %v, want the save still in progress", entries(t, dir))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v (%v), want death by SIGTERM", cmd.ProcessState, err)
	}
	if left := temps(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A SIGKILL cannot be caught: its temporary file stays until the next successful
// save to that target removes it.
func TestStaleTempAfterKill(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	cmd := startSaver(t, dir)
	cmd.Process.Kill()
	cmd.Wait()
	left := temps(t, dir)
	if len(left) != 1 {
		t.Fatalf("after SIGKILL: %v", entries(t, dir))
	}
	if st, _ := os.Stat(filepath.Join(dir, left[0])); st.Size() < 3<<20 {
		t.Errorf("temporary file of %d bytes", st.Size())
	}
	if err := WriteFile(target, []byte("next")); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "target" {
		t.Errorf("after the next save: %v", got)
	}
}

// Which leftovers the next save removes: only regular files named as ours for
// that target, and only when their writer is gone.
func TestRemoveStale(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	deadPID := dead.ProcessState.Pid()
	live := os.Getppid()
	old, older := time.Now().Add(-2*time.Minute), time.Now().Add(-2*time.Hour)
	cases := []struct {
		name    string
		mtime   time.Time
		dir     bool
		removed bool
	}{
		{fmt.Sprintf(".t.tmp-%d-123", deadPID), time.Now(), false, true},      // its writer died
		{fmt.Sprintf(".t.tmp-%d-124", live), time.Now(), false, false},        // a concurrent writer
		{fmt.Sprintf(".t.tmp-%d-125", live), old, false, false},               // a slow concurrent writer
		{fmt.Sprintf(".t.tmp-%d-126", live), older, false, true},              // a reused PID
		{fmt.Sprintf(".t.tmp-%d-127", os.Getpid()), old, false, true},         // ours, not in flight
		{fmt.Sprintf(".t.tmp-%d-128", os.Getpid()), time.Now(), false, false}, // our PID, fresh: maybe another container's
		{".t.tmp-98765", time.Now(), false, false},                            // older naming, fresh
		{".t.tmp-98766", old, false, true},                                    // older naming, stale
		{".t.tmp-abc", older, false, false},                                   // not our pattern
		{fmt.Sprintf(".t.tmp-%d-1x", deadPID), older, false, false},
		{fmt.Sprintf(".t.tmp-%d-", deadPID), older, false, false},
		{fmt.Sprintf(".u.tmp-%d-1", deadPID), older, false, false}, // another target's
		{fmt.Sprintf("t.tmp-%d-1", deadPID), older, false, false},
		{fmt.Sprintf(".t.tmp-%d-2", deadPID), older, true, false}, // a folder
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if c.dir {
			os.Mkdir(p, 0o755)
		} else {
			os.WriteFile(p, []byte("x"), 0o644)
		}
		os.Chtimes(p, c.mtime, c.mtime)
	}
	if err := WriteFile(filepath.Join(dir, "t"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := os.Stat(filepath.Join(dir, c.name))
		if gone := os.IsNotExist(err); gone != c.removed {
			t.Errorf("%s: removed %v, want %v", c.name, gone, c.removed)
		}
	}
}
