// Package orthanc starts a real PACS for tests: Debian's Orthanc with its DICOMweb plugin,
// on a random loopback port, with its own storage folder and HTTP authentication. The
// server is stopped when the test ends; nothing is left running.
package orthanc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	Binary = "/usr/sbin/Orthanc"
	Plugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
	User   = "medsa"
)

// Server is a running Orthanc.
type Server struct {
	URL      string // REST root, http://127.0.0.1:PORT
	DICOMweb string // DICOMweb root, URL + "/dicom-web"
	Password string
	dir      string
	port     int
	cmd      *exec.Cmd
	log      *bytes.Buffer
	t        testing.TB
}

// Start runs Orthanc for the test, or skips it when Orthanc is not installed (fails
// instead when MEDSA_REQUIRE_TESTDATA is set, as `make test` does).
func Start(t testing.TB) *Server {
	t.Helper()
	for _, p := range []string{Binary, Plugin} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("MEDSA_REQUIRE_TESTDATA") != "" {
				t.Fatalf("%s missing (make setup installs orthanc and orthanc-dicomweb)", p)
			}
			t.Skipf("%s missing (make setup installs orthanc and orthanc-dicomweb)", p)
		}
	}
	s := &Server{dir: t.TempDir(), Password: fmt.Sprintf("pw-%d", time.Now().UnixNano()), t: t}
	s.port = freePort(t)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.DICOMweb = s.URL + "/dicom-web"
	cfg := map[string]any{
		"Name":                  "medsa-test",
		"StorageDirectory":      filepath.Join(s.dir, "db"),
		"IndexDirectory":        filepath.Join(s.dir, "db"),
		"HttpPort":              s.port,
		"DicomServerEnabled":    false,
		"DicomPort":             freePort(t),
		"RemoteAccessAllowed":   false,
		"AuthenticationEnabled": true,
		"RegisteredUsers":       map[string]string{User: s.Password},
		"Plugins":               []string{Plugin},
		"DicomWeb":              map[string]any{"Enable": true, "Root": "/dicom-web/", "EnableWado": true, "Ssl": false},
		"StableAge":             1,
		"HttpThreadsCount":      16,
	}
	b, _ := json.MarshalIndent(cfg, "", " ")
	if err := os.WriteFile(filepath.Join(s.dir, "orthanc.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.run()
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts the process and waits until its REST API answers.
func (s *Server) run() {
	s.t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(Binary, filepath.Join(s.dir, "orthanc.json"))
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start Orthanc: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Get("/system"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	s.t.Fatalf("Orthanc did not answer on %s within 30 s:\n%s", s.URL, s.log.String())
}

// Stop ends the server (idempotent); Restart brings it back on the same port and storage.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again with the same port and storage.
func (s *Server) Restart() { s.Stop(); s.run() }

// Get calls the REST API with the test credentials.
func (s *Server) Get(path string) ([]byte, error) {
	return s.call(http.MethodGet, path, nil)
}

// Upload stores one DICOM file through the REST API and returns Orthanc's answer.
func (s *Server) Upload(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	_, err = s.call(http.MethodPost, "/instances", b)
	return err
}

// UploadDir stores every file of a folder.
func (s *Server) UploadDir(dir string) (int, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := s.Upload(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("%s: %w", e.Name(), err)
		}
		n++
	}
	return n, nil
}

func (s *Server) call(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(User, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out)
	}
	return out, nil
}
