package dicomweb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// SeriesRef names a series on a server: what a series URL says.
type SeriesRef struct {
	Root, Study, Series string
}

// IsSeriesURL reports whether s looks like a DICOMweb series URL.
func IsSeriesURL(s string) bool {
	_, err := ParseSeriesURL(s)
	return err == nil
}

// ParseSeriesURL splits http[s]://HOST/ROOT/studies/{study}/series/{series}.
func ParseSeriesURL(s string) (SeriesRef, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return SeriesRef{}, fmt.Errorf("%q is not an http(s) URL", redact(s))
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] == "studies" && parts[i+2] == "series" && i+4 == len(parts) {
			study, e1 := url.PathUnescape(parts[i+1])
			series, e2 := url.PathUnescape(parts[i+3])
			if e1 != nil || e2 != nil || study == "" || series == "" {
				break
			}
			root := *u
			root.RawQuery, root.Fragment = "", ""
			root.Path = "/" + strings.Join(parts[:i], "/")
			root.RawPath = ""
			return SeriesRef{Root: strings.TrimRight(root.String(), "/"), Study: study, Series: series}, nil
		}
	}
	return SeriesRef{}, fmt.Errorf("%s is not a DICOMweb series URL (want .../studies/{StudyUID}/series/{SeriesUID})", redact(s))
}

// CacheRoot is where retrieved series are kept: $MEDSA_CACHE_DIR/dicomweb, else the user cache.
func CacheRoot() string {
	if d := os.Getenv("MEDSA_CACHE_DIR"); d != "" {
		return filepath.Join(d, "dicomweb")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "medsa", "dicomweb")
}

// manifest is written last, atomically: a series folder is complete only as far as its
// manifest says, and each file is named by the SHA-256 of its bytes.
type manifest struct {
	Root      string            `json:"root"`
	Study     string            `json:"study_uid"`
	Series    string            `json:"series_uid"`
	Instances map[string]string `json:"instances"` // SOP Instance UID -> sha256 (file <sha>.dcm)
}

// Progress is told how many instances of a series are in the cache so far.
type Progress func(done, total int)

// Retrieve brings a series into the local cache and returns the folder of its instances.
// Instances already cached and verified are not fetched again. A cancelled or failed
// retrieval leaves only complete, verified files and the previous manifest.
func (c *Client) Retrieve(ctx context.Context, study, series string, progress Progress) (string, error) {
	key := sha256.Sum256([]byte(c.Root + "\n" + study + "\n" + series))
	dir := filepath.Join(CacheRoot(), hex.EncodeToString(key[:12]))
	inst := filepath.Join(dir, "instances")
	if err := os.MkdirAll(inst, 0o700); err != nil {
		return "", fmt.Errorf("retrieve series %s: cache: %w", series, err)
	}
	var uids []string
	var pre map[string]string // a cold cache: instances streamed while the list was being asked for
	if _, err := os.Stat(filepath.Join(dir, "series.json")); errors.Is(err, os.ErrNotExist) {
		var total atomic.Int64
		type listing struct {
			uids []string
			err  error
		}
		lc := make(chan listing, 1)
		go func() {
			u, err := c.SearchInstances(ctx, study, series)
			total.Store(int64(len(u)))
			lc <- listing{u, err}
		}()
		pre = map[string]string{}
		serr := c.fetchSeries(ctx, study, series, inst, nil, func(sop, sum string) {
			pre[sop] = sum
			if n := int(total.Load()); progress != nil && n > 0 {
				progress(min(len(pre), n), n)
			}
		})
		l := <-lc
		if l.err != nil {
			if len(pre) > 0 { // keep what arrived whole: the next retrieval starts from it
				if err := writeManifest(dir, manifest{Root: c.Root, Study: study, Series: series, Instances: pre}); err != nil {
					return "", err
				}
			}
			return "", fmt.Errorf("retrieve series %s: %d instances cached: %w", series, len(pre), l.err)
		}
		if serr != nil && ctx.Err() != nil {
			return "", fmt.Errorf("retrieve series %s: %w", series, serr)
		}
		uids = l.uids
	} else {
		var err error
		if uids, err = c.SearchInstances(ctx, study, series); err != nil {
			return "", err
		}
	}
	if len(uids) == 0 {
		return "", fmt.Errorf("retrieve series %s: the server lists no instances", series)
	}
	m := manifest{Root: c.Root, Study: study, Series: series, Instances: map[string]string{}}
	if b, err := os.ReadFile(filepath.Join(dir, "series.json")); err == nil {
		var old manifest
		if json.Unmarshal(b, &old) == nil {
			for sop, sum := range old.Instances {
				if verify(filepath.Join(inst, sum+".dcm"), sum) {
					m.Instances[sop] = sum
				}
			}
		}
	}
	for _, u := range uids {
		if sum, ok := pre[u]; ok {
			m.Instances[u] = sum
		}
	}
	var todo []string
	for _, u := range uids {
		if _, ok := m.Instances[u]; !ok {
			todo = append(todo, u)
		}
	}
	total, done := len(uids), len(uids)-len(todo)
	if progress != nil {
		progress(done, total)
	}
	if len(todo) > len(uids)/2 {
		// Mostly missing: the whole series in one multipart answer, as a plain client would; what it
		// does not bring (an error midway, an instance the server skips) is fetched one by one below.
		listed := map[string]bool{}
		for _, u := range uids {
			listed[u] = true
		}
		serr := c.fetchSeries(ctx, study, series, inst, listed, func(sop, sum string) {
			if _, had := m.Instances[sop]; had {
				return // cached before: the same bytes, the same file
			}
			m.Instances[sop] = sum
			done++
			if progress != nil {
				progress(done, total)
			}
		})
		if serr != nil && ctx.Err() != nil {
			return "", fmt.Errorf("retrieve series %s: %w", series, serr)
		}
		todo = todo[:0]
		for _, u := range uids {
			if _, ok := m.Instances[u]; !ok {
				todo = append(todo, u)
			}
		}
	}
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(1, c.Parallel))
	var wg sync.WaitGroup
	for _, sop := range todo {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func(sop string) {
			defer func() { <-sem; wg.Done() }()
			sum, err := c.fetchInstance(ctx, study, series, sop, inst)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			m.Instances[sop] = sum
			done++
			if progress != nil {
				progress(done, total)
			}
		}(sop)
	}
	wg.Wait()
	// Keep the manifest true to what is verified, even after a failure: the next run
	// fetches only what is missing.
	keep := map[string]string{}
	for _, u := range uids {
		if s, ok := m.Instances[u]; ok {
			keep[u] = s
		}
	}
	m.Instances = keep
	if err := writeManifest(dir, m); err != nil {
		return "", err
	}
	if firstErr != nil {
		return "", fmt.Errorf("retrieve series %s: %d of %d instances cached: %w", series, len(keep), total, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("retrieve series %s: %w", series, err)
	}
	prune(inst, keep)
	return inst, nil
}

// verify checks a cached file against its name's hash.
func verify(path, sum string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sum
}

// prune removes files of ours in the instances folder that the manifest no longer lists
// (instances deleted on the server, left-over temporaries).
func prune(inst string, keep map[string]string) {
	want := map[string]bool{}
	for _, s := range keep {
		want[s+".dcm"] = true
	}
	es, _ := os.ReadDir(inst)
	for _, e := range es {
		if !want[e.Name()] && (strings.HasSuffix(e.Name(), ".dcm") || strings.HasPrefix(e.Name(), ".part-")) {
			os.Remove(filepath.Join(inst, e.Name()))
		}
	}
}

func writeManifest(dir string, m manifest) error {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".series-*.json")
	if err != nil {
		return fmt.Errorf("cache %s: %w", dir, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "series.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache %s: %w", dir, err)
	}
	return nil
}

const dicomAccept = `multipart/related; type="application/dicom"; transfer-syntax=*`

// fetchInstance streams one instance (WADO-RS) into dir as <sha256>.dcm.
func (c *Client) fetchInstance(ctx context.Context, study, series, sop, dir string) (string, error) {
	path := "/studies/" + url.PathEscape(study) + "/series/" + url.PathEscape(series) + "/instances/" + url.PathEscape(sop)
	op := "retrieve instance " + sop
	resp, err := c.get(ctx, op, path, nil, dicomAccept)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := firstPart(resp.Header.Get("Content-Type"), resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	sum, _, err := savePart(body, dir, op)
	return sum, err
}

// fetchSeries streams a whole series (WADO-RS, one multipart answer) into dir, telling got about each
// listed instance as soon as its file is in place.
func (c *Client) fetchSeries(ctx context.Context, study, series, dir string, listed map[string]bool, got func(sop, sum string)) error {
	path := "/studies/" + url.PathEscape(study) + "/series/" + url.PathEscape(series)
	op := "retrieve series " + series
	resp, err := c.get(ctx, op, path, nil, dicomAccept)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return fmt.Errorf("%s: unexpected content type %q", op, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		sum, sop, err := savePart(p, dir, op)
		if err != nil {
			return err
		}
		if listed == nil || listed[sop] {
			got(sop, sum)
		} else {
			os.Remove(filepath.Join(dir, sum+".dcm")) // not in the instance list: not ours to keep
		}
	}
}

// savePart writes one DICOM part into dir as <sha256>.dcm and returns the hash and the file's
// MediaStorageSOPInstanceUID.
func savePart(body io.Reader, dir, op string) (sum, sop string, err error) {
	tmp, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return "", "", fmt.Errorf("%s: cache: %w", op, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if err != nil {
		return "", "", fmt.Errorf("%s: after %d bytes: %w", op, n, err)
	}
	if sop, err = metaSOP(tmp); err != nil {
		return "", "", fmt.Errorf("%s: %w", op, err)
	}
	// No fsync: a file torn by a crash fails its hash on the next use and is fetched again.
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("%s: cache: %w", op, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sum+".dcm")); err != nil {
		return "", "", fmt.Errorf("%s: cache: %w", op, err)
	}
	ok = true
	return sum, sop, nil
}

// metaSOP requires the DICOM Part 10 marker, so an HTML error page or a cut answer is never
// cached as an instance, and reads the MediaStorageSOPInstanceUID (0002,0003) from the file
// meta group (always explicit VR little endian).
func metaSOP(f *os.File) (string, error) {
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	b = b[:n]
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		return "", errors.New("the server's answer is not a DICOM file (no DICM marker)")
	}
	for p := 132; p+8 <= len(b) && b[p] == 0x02 && b[p+1] == 0x00; {
		el := uint16(b[p+2]) | uint16(b[p+3])<<8
		vr := string(b[p+4 : p+6])
		var l, hdr int
		switch vr {
		case "OB", "OW", "OF", "SQ", "UT", "UN":
			if p+12 > len(b) {
				return "", errors.New("DICOM file meta information is truncated")
			}
			l, hdr = int(uint32(b[p+8])|uint32(b[p+9])<<8|uint32(b[p+10])<<16|uint32(b[p+11])<<24), 12
		default:
			l, hdr = int(uint16(b[p+6])|uint16(b[p+7])<<8), 8
		}
		if l < 0 || p+hdr+l > len(b) {
			return "", errors.New("DICOM file meta information is truncated")
		}
		if el == 0x0003 {
			return strings.TrimRight(string(b[p+hdr:p+hdr+l]), "\x00 "), nil
		}
		p += hdr + l
	}
	return "", errors.New("DICOM file without a MediaStorageSOPInstanceUID in its meta information")
}

// firstPart returns the body of the first part of a multipart/related answer (or the body
// itself when the server sent application/dicom).
func firstPart(contentType string, r io.Reader) (io.Reader, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", contentType, err)
	}
	if mt == "application/dicom" {
		return r, nil
	}
	if !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, fmt.Errorf("unexpected content type %q (want multipart/related; type=application/dicom)", contentType)
	}
	p, err := multipart.NewReader(r, params["boundary"]).NextPart()
	if err != nil {
		return nil, fmt.Errorf("multipart answer: %w", err)
	}
	return p, nil
}

// StoreResult is what the server said about a STOW-RS request.
type StoreResult struct {
	Stored   []string          // SOP Instance UIDs the server accepted
	Failed   map[string]string // SOP Instance UID -> failure reason
	Warnings []string
}

// Store sends DICOM files to the server (STOW-RS, one request).
func (c *Client) Store(ctx context.Context, files ...[]byte) (*StoreResult, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		w, err := mw.CreatePart(map[string][]string{"Content-Type": {"application/dicom"}})
		if err != nil {
			return nil, err
		}
		w.Write(f)
	}
	mw.Close()
	body := buf.Bytes()
	ct := `multipart/related; type="application/dicom"; boundary=` + mw.Boundary()
	resp, err := c.do(ctx, "store", func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, c.Root+"/studies", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Accept", jsonAccept)
		}
		return req, err
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	res := &StoreResult{Failed: map[string]string{}}
	var a Attrs
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &a); err != nil {
			var arr []Attrs
			if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
				return nil, fmt.Errorf("store: %s: the answer is not DICOM JSON: %w", c.Root, err)
			}
			a = arr[0]
		}
	}
	for _, it := range a.items("00081199") {
		res.Stored = append(res.Stored, it.Str("00081155"))
	}
	for _, it := range a.items("00081198") {
		res.Failed[it.Str("00081155")] = "failure reason " + it.Str("00081197")
	}
	if resp.StatusCode == 202 {
		res.Warnings = append(res.Warnings, "the server accepted with warnings (HTTP 202)")
	}
	sort.Strings(res.Stored)
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("store: %s: %d object(s) refused: %v", c.Root, len(res.Failed), res.Failed)
	}
	return res, nil
}

// items decodes a sequence attribute's items.
func (a Attrs) items(tag string) []Attrs {
	var out []Attrs
	for _, raw := range a[tag].Value {
		var it Attrs
		if json.Unmarshal(raw, &it) == nil {
			out = append(out, it)
		}
	}
	return out
}
