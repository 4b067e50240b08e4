package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

// captureStderr runs f with the notes' writer captured.
func captureStderr(f func()) string {
	var b bytes.Buffer
	prev := stderr
	stderr = &b
	defer func() { stderr = prev }()
	f()
	return b.String()
}

// writeNifti writes a small int16 NIfTI, with dim[4] patched to nvol (one volume
// is stored whatever it says: the header lies when nvol > 1).
func writeNifti(t *testing.T, path string, size [3]int, nvol int) {
	t.Helper()
	v := &volume.Volume{Size: size, Channels: 1, DataType: "int16", Affine: volume.Identity(),
		Data: make([]float32, size[0]*size[1]*size[2])}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range v.Data {
		v.Data[i] = float32(rng.IntN(2000) - 1000)
	}
	var b bytes.Buffer
	if err := nifti.EncodeVolume(&b, v, false); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	if nvol > 1 {
		binary.LittleEndian.PutUint16(raw[40:], 4)
		binary.LittleEndian.PutUint16(raw[48:], uint16(nvol))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 14, 8 and 9: convert prints the reader's notes on stderr; refuses a
// read-only target unless --force, a folder as target, a missing folder and a
// named pipe as PATH, each with a message naming the file.
func TestConvertNotesAndOutputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.nii")
	writeNifti(t, in, [3]int{4, 3, 2}, 32767)
	out := filepath.Join(dir, "out.nii.gz")
	var err error
	notes := captureStderr(func() { err = runConvert([]string{in, out}) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "medsa: note: the header declares 32767 volumes (4D) but the file holds 1") {
		t.Errorf("stderr %q lacks the note", notes)
	}

	ro := filepath.Join(dir, "ro.nii.gz")
	os.WriteFile(ro, []byte("keep me"), 0o444)
	err = runConvert([]string{in, ro})
	if err == nil || !strings.Contains(err.Error(), ro) || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("read-only target: %v", err)
	}
	if b, _ := os.ReadFile(ro); string(b) != "keep me" {
		t.Errorf("read-only target replaced")
	}
	if captureStderr(func() { err = runConvert([]string{in, ro, "--force"}) }); err != nil {
		t.Errorf("--force: %v", err)
	}
	if st, _ := os.Stat(ro); st == nil || st.Mode().Perm() != 0o444 || st.Size() < 100 {
		t.Errorf("after --force: %v", st)
	}

	fifo := filepath.Join(dir, "pipe.nii")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "folder.nii.gz"), 0o755)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{in, filepath.Join(dir, "folder.nii.gz")}, "is a folder"},
		{[]string{in, filepath.Join(dir, "missing", "o.nii.gz")}, "does not exist"},
		{[]string{fifo, out}, "named pipe"},
		{[]string{in, fifo}, "not a regular file"},
	} {
		done := make(chan error, 1)
		go func() { done <- runConvert(c.args) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("convert %v: %v, want %q", c.args, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("convert %v hangs", c.args)
		}
	}
}

// Issue 14, 7: segment checks every output before the model runs: a sidecar path
// that is a folder, or a read-only mask, fails at once and leaves the mask as it was.
func TestSegmentChecksOutputsFirst(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "img.nii")
	writeNifti(t, in, [3]int{16, 16, 2}, 1)
	out := filepath.Join(dir, "seg.nii.gz")
	os.WriteFile(out, []byte("old mask"), 0o644)
	os.Mkdir(filepath.Join(dir, "seg.json"), 0o755)
	args := []string{"--image", in, "--out", out, "--model", filepath.Join(dir, "no-model-here"), "--point", "3,3,0,+"}
	err := runSegment(args)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "seg.json")) || !strings.Contains(err.Error(), "folder") {
		t.Errorf("sidecar folder: %v", err)
	}
	os.Remove(filepath.Join(dir, "seg.json"))
	os.Chmod(out, 0o444)
	if err := runSegment(args); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("read-only mask: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "old mask" {
		t.Errorf("mask replaced: %q", b)
	}
	// With --force the outputs pass and it gets as far as the (missing) model.
	if err := runSegment(append(args, "--force")); err == nil || strings.Contains(err.Error(), "read-only") {
		t.Errorf("--force: %v", err)
	}
}

// The notes reach stderr through segment too (with the bundled tiny test model).
func TestSegmentPrintsNotes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "img.nii")
	writeNifti(t, in, [3]int{32, 32, 1}, 40)
	out := filepath.Join(dir, "seg.nii.gz")
	var err error
	notes := captureStderr(func() {
		err = runSegment([]string{"--image", in, "--out", out, "--model", "testdata/tinymodel", "--device", "cpu", "--threads", "1", "--point", "3,3,0,+"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "medsa: note: the header declares 40 volumes") {
		t.Errorf("stderr %q", notes)
	}
}

const cliChild = "MEDSA_TEST_CLI" // arguments for main, one a line, in a re-executed test binary

// TestCLIChild is main itself when the test binary is re-executed by
// TestConvertSignal; otherwise it does nothing.
func TestCLIChild(t *testing.T) {
	a := os.Getenv(cliChild)
	if a == "" {
		t.Skip("runs only as a child of TestConvertSignal")
	}
	os.Args = append([]string{"medsa"}, strings.Split(a, "\n")...)
	main()
	os.Exit(0)
}

// Issue 14, 6: convert ended by SIGTERM mid-save leaves no temporary file and
// dies of the signal.
func TestConvertSignal(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "big.nii")
	writeNifti(t, in, [3]int{256, 256, 160}, 1) // 20 MB of noise: seconds to gzip here
	out := filepath.Join(dir, "out.nii.gz")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChild$")
	cmd.Env = append(os.Environ(), cliChild+"=convert\n"+in+"\n"+out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var tmp string
	for tmp == "" && time.Now().Before(deadline) {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".out.nii.gz.tmp-") {
				tmp = e.Name()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if tmp == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no save in progress seen")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		if _, err := os.Stat(out); err == nil {
			t.Skip("the save finished before the signal")
		}
		t.Errorf("child ended with %v", cmd.ProcessState)
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left %s", e.Name())
		}
	}
}
