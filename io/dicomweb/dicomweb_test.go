package dicomweb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medsa/medsa/internal/orthanc"
	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/dicom"
)

const axial = "derived/dicom/axial"

// pacs starts Orthanc with the 108-slice head CT and returns it with a client.
func pacs(t *testing.T) (*orthanc.Server, *Client, string) {
	src := td.Path(t, axial)
	t.Setenv("MEDSA_CACHE_DIR", t.TempDir())
	t.Setenv("MEDSA_DICOMWEB_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	s := orthanc.Start(t)
	if n, err := s.UploadDir(src); err != nil || n != 108 {
		t.Fatalf("upload: %d files, %v", n, err)
	}
	c, err := NewClient(Server{URL: s.DICOMweb, User: orthanc.User, Password: s.Password})
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = 20 * time.Millisecond
	return s, c, src
}

func TestSearchRetrieveStore(t *testing.T) {
	s, c, src := pacs(t)
	ctx := context.Background()
	studies, err := c.SearchStudies(ctx, Filter{})
	if err != nil || len(studies) != 1 {
		t.Fatalf("studies %v, %v", studies, err)
	}
	st := studies[0]
	if st.Instances != 108 || st.Series != 1 {
		t.Errorf("study counts: %d series, %d instances", st.Series, st.Instances)
	}
	// Filters reach the server: a patient that is not there matches nothing.
	if none, err := c.SearchStudies(ctx, Filter{PatientID: "no-such-patient"}); err != nil || len(none) != 0 {
		t.Errorf("filtered search: %v %v", none, err)
	}
	series, err := c.SearchSeries(ctx, st.UID)
	if err != nil || len(series) != 1 || series[0].Instances != 108 || series[0].Modality != "CT" {
		t.Fatalf("series %+v, %v", series, err)
	}
	var last [2]int
	var calls atomic.Int32
	base := c.HTTP.Transport
	c.HTTP.Transport = counting{base, &calls}
	dir, err := c.Retrieve(ctx, st.UID, series[0].UID, func(d, n int) { last = [2]int{d, n} })
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("a cold retrieval made %d requests, want 2 (the list, the series as one multipart answer)", n)
	}
	if last != [2]int{108, 108} {
		t.Errorf("progress ended at %v", last)
	}
	got, err := dicom.ReadSeries(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := dicom.ReadSeries(src, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != want.Size || got.Affine != want.Affine {
		t.Fatalf("retrieved %v %v, source %v %v", got.Size, got.Affine, want.Size, want.Affine)
	}
	for i := range got.Data {
		if got.Data[i] != want.Data[i] {
			t.Fatalf("voxel %d: %v vs %v", i, got.Data[i], want.Data[i])
		}
	}
	// A second retrieval is served from the verified cache: only the listing goes out.
	calls.Store(0)
	if _, err := c.Retrieve(ctx, st.UID, series[0].UID, nil); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("cached retrieval made %d requests, want 1 (the instance list)", n)
	}
	// A corrupted cache file is noticed and fetched again.
	es, _ := os.ReadDir(dir)
	os.WriteFile(filepath.Join(dir, es[0].Name()), []byte("garbage"), 0o600)
	calls.Store(0)
	if _, err := c.Retrieve(ctx, st.UID, series[0].UID, nil); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("after corrupting one file: %d requests, want 2", n)
	}
	// STOW-RS: a new object lands in the PACS.
	mr, err := os.ReadFile(td.Path(t, "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Store(ctx, mr)
	if err != nil || len(res.Stored) != 1 {
		t.Fatalf("store: %+v %v", res, err)
	}
	if all, _ := c.SearchStudies(ctx, Filter{}); len(all) != 2 {
		t.Errorf("after STOW: %d studies, want 2", len(all))
	}
	_ = s
}

// killAfter calls kill once a series answer's body has delivered n bytes.
type killAfter struct {
	rt   http.RoundTripper
	n    int
	kill func()
}

func (k killAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := k.rt.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/series/"+path.Base(r.URL.Path)) {
		resp.Body = &killingBody{ReadCloser: resp.Body, left: k.n, kill: k.kill}
	}
	return resp, err
}

type killingBody struct {
	io.ReadCloser
	left int
	kill func()
}

func (b *killingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left -= n; b.left <= 0 && b.kill != nil {
		b.kill()
		b.kill = nil
	}
	return n, err
}

type counting struct {
	rt http.RoundTripper
	n  *atomic.Int32
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestWrongPassword(t *testing.T) {
	s, _, _ := pacs(t)
	c, _ := NewClient(Server{URL: s.DICOMweb, User: orthanc.User, Password: "not-the-password-XYZ"})
	_, err := c.SearchStudies(context.Background(), Filter{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "not-the-password-XYZ") || strings.Contains(err.Error(), s.Password) {
		t.Errorf("the error shows a password: %v", err)
	}
}

// The server dies in the middle of a retrieval: a clear error, only verified files and a
// true manifest in the cache; once it is back, the retrieval completes with what is missing.
func TestServerStoppedMidRetrieve(t *testing.T) {
	s, c, src := pacs(t)
	ctx := context.Background()
	st, _ := c.SearchStudies(ctx, Filter{})
	se, _ := c.SearchSeries(ctx, st[0].UID)
	c.Parallel, c.Retries = 1, 1
	// The server is killed once 4 MB of the series (about 30 of its 108 instances) have arrived.
	base := c.HTTP.Transport
	c.HTTP.Transport = killAfter{base, 4 << 20, s.Stop}
	_, err := c.Retrieve(ctx, st[0].UID, se[0].UID, nil)
	c.HTTP.Transport = base
	// The series arrives as one multipart stream: what was complete when the server died is kept.
	m := regexp.MustCompile(`(\d+) (of 108 )?instances cached`).FindStringSubmatch(fmt.Sprint(err))
	if m == nil {
		t.Fatalf("got %v", err)
	}
	cached, _ := strconv.Atoi(m[1])
	if cached < 10 || cached >= 108 {
		t.Fatalf("%d instances cached after the server was stopped about 30 instances into the series", cached)
	}
	s.Restart()
	var calls atomic.Int32
	c.HTTP.Transport = counting{c.HTTP.Transport, &calls}
	dir, err := c.Retrieve(ctx, st[0].UID, se[0].UID, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := int32(1 + 108 - cached) // the list, then each missing instance
	if 108-cached > 54 {
		wantCalls = 2 // the list, then the series again
	}
	if n := calls.Load(); n != wantCalls {
		t.Errorf("resumed retrieval with %d of 108 cached made %d requests, want %d", cached, n, wantCalls)
	}
	got, err := dicom.ReadSeries(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := dicom.ReadSeries(src, "")
	if got.Size != want.Size || len(got.Notes) != len(want.Notes) {
		t.Errorf("resumed series %v (notes %v), want %v", got.Size, got.Notes, want.Size)
	}
}

// A server that answers 500 to STOW-RS: retried, then a clear error.
func TestStoreServerError(t *testing.T) {
	s, _, _ := pacs(t)
	up, _ := url.Parse(s.URL)
	var posts atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(up)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			http.Error(w, "database is locked", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, _ := NewClient(Server{URL: front.URL + "/dicom-web", User: orthanc.User, Password: s.Password})
	c.Backoff = time.Millisecond
	mr, _ := os.ReadFile(td.Path(t, "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small.dcm"))
	_, err := c.Store(context.Background(), mr)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 500 || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("got %v", err)
	}
	if n := posts.Load(); n != int32(1+c.Retries) {
		t.Errorf("%d attempts, want %d", n, 1+c.Retries)
	}
}

func TestParseSeriesURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SeriesRef
		ok   bool
	}{
		{"http://h:8042/dicom-web/studies/1.2/series/3.4", SeriesRef{"http://h:8042/dicom-web", "1.2", "3.4"}, true},
		{"https://pacs.example/wado/rs/studies/1.2/series/3.4/", SeriesRef{"https://pacs.example/wado/rs", "1.2", "3.4"}, true},
		{"http://h/studies/1/series/2", SeriesRef{"http://h", "1", "2"}, true},
		{"http://h/dicom-web/studies/1.2", SeriesRef{}, false},
		{"http://h/dicom-web/studies/1.2/series/3/instances/4", SeriesRef{}, false},
		{"ftp://h/studies/1/series/2", SeriesRef{}, false},
		{"/data/ct", SeriesRef{}, false},
	} {
		got, err := ParseSeriesURL(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s: %+v %v", c.in, got, err)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dicomweb.json")
	os.WriteFile(p, []byte(`{"servers":[{"url":"http://pacs/dicom-web","user":"u","password":"p"},{"url":"http://pacs/dicom-web/ct","token":"t"}]}`), 0o644)
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable servers file: %v", err)
	}
	os.Chmod(p, 0o600)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEDSA_DICOMWEB_TOKEN", "")
	t.Setenv("MEDSA_DICOMWEB_USER", "")
	if s := c.Lookup("http://pacs/dicom-web/ct/studies/1/series/2"); s.Token != "t" || s.URL != "http://pacs/dicom-web/ct" {
		t.Errorf("longest prefix: %+v", s)
	}
	if s := c.Lookup("http://pacs/dicom-web/studies/1"); s.User != "u" {
		t.Errorf("prefix: %+v", s)
	}
	if s := c.Lookup("http://pacs/dicom-webx"); s.User != "" {
		t.Errorf("not a path prefix: %+v", s)
	}
	t.Setenv("MEDSA_DICOMWEB_USER", "envuser")
	t.Setenv("MEDSA_DICOMWEB_PASSWORD", "envpw")
	if s := c.Lookup("http://pacs/dicom-web"); s.User != "envuser" || s.Password != "envpw" {
		t.Errorf("environment: %+v", s)
	}
	if _, err := NewClient(Server{URL: "http://u:secret@pacs/dicom-web"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("credentials in the URL: %v", err)
	}
}
