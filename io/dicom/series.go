package dicom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Series describes one series found in a folder.
type Series struct {
	UID         string `json:"uid"`
	Number      int    `json:"number,omitempty"`
	Description string `json:"description"`
	Modality    string `json:"modality"`
	Size        [3]int `json:"size"` // columns, rows, frames
	Files       int    `json:"files"`
}

// MultipleSeriesError is returned when a folder holds several series and none was chosen.
type MultipleSeriesError struct {
	Path   string
	Series []Series
}

func (e *MultipleSeriesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s holds %d series; choose one with --series UID:", e.Path, len(e.Series))
	for _, s := range e.Series {
		fmt.Fprintf(&b, " [%s %s %q %dx%dx%d]", s.UID, s.Modality, s.Description, s.Size[0], s.Size[1], s.Size[2])
	}
	return b.String()
}

// headPrefix is how much of each file the grouping pass reads; longer headers
// (enhanced multi-frame) are re-read whole.
const headPrefix = 16 << 10

// readHeaderFile reads and parses one file's header.
func readHeaderFile(path string) (h *header, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("%s: malformed DICOM (parser panic: %v)", path, r)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	n := min(size, headPrefix)
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("%s: read: %w", path, err)
	}
	h, err = parseHeader(path, buf, size, n == size)
	if errors.Is(err, errNeedMore) {
		if size > maxInflate {
			return nil, fmt.Errorf("%s: header longer than %d bytes", path, headPrefix)
		}
		buf = make([]byte, size)
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("%s: read: %w", path, err)
		}
		h, err = parseHeader(path, buf, size, true)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// scan lists the files under paths (directories recursively) and parses their
// headers in parallel. Non-DICOM files are skipped with a note.
func scan(ctx context.Context, paths []string) ([]*header, []string, error) {
	var files []string
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", p, err)
		}
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%s: no files", strings.Join(paths, ", "))
	}
	sort.Strings(files)
	hs := make([]*header, len(files))
	errs := make([]error, len(files))
	if err := parallel(ctx, len(files), func(i int) {
		hs[i], errs[i] = readHeaderFile(files[i])
	}); err != nil {
		return nil, nil, err
	}
	var out []*header
	var notes []string
	skipped, nopix := 0, 0
	var firstSkip, firstErr error
	for i, h := range hs {
		if errs[i] != nil {
			skipped++
			if firstSkip == nil {
				firstSkip = errs[i]
			}
			if firstErr == nil {
				firstErr = errs[i]
			}
			continue
		}
		if !h.hasPix {
			nopix++
			continue
		}
		out = append(out, h)
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("skipped %d file(s) that are not readable DICOM images (first: %v)", skipped, firstSkip))
	}
	if nopix > 0 {
		notes = append(notes, fmt.Sprintf("skipped %d DICOM file(s) without pixel data", nopix))
	}
	if len(out) == 0 {
		if len(files) == 1 && firstErr != nil {
			return nil, nil, firstErr
		}
		if len(files) == 1 {
			h := hs[0]
			return nil, nil, fmt.Errorf("%s: DICOM file without pixel data (SOP class %q, modality %q): not an image, or truncated before its pixels",
				files[0], h.ds.str(tSOPClass), h.ds.str(tModality))
		}
		msg := fmt.Sprintf("%s: no DICOM images among %d file(s)", strings.Join(paths, ", "), len(files))
		if firstErr != nil {
			msg += fmt.Sprintf(" (first problem: %v)", firstErr)
		}
		return nil, nil, errors.New(msg)
	}
	return out, notes, nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines. Once ctx is done no
// new item starts and its error is returned (items under way finish).
func parallel(ctx context.Context, n int, f func(i int)) error {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			f(i)
		}
		return ctx.Err()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func group(hs []*header) ([]Series, map[string][]*header) {
	by := map[string][]*header{}
	var order []string
	for _, h := range hs {
		uid := h.ds.str(tSeriesUID)
		if _, ok := by[uid]; !ok {
			order = append(order, uid)
		}
		by[uid] = append(by[uid], h)
	}
	var out []Series
	for _, uid := range order {
		g := by[uid]
		h := g[0]
		frames := 0
		for _, x := range g {
			frames += max(1, units(x))
		}
		size := [3]int{h.ds.uint(tColumns, 0), h.ds.uint(tRows, 0), frames}
		if h.mos.n > 0 {
			size[0], size[1] = h.mos.tileCols, h.mos.tileRows
		}
		out = append(out, Series{UID: uid, Number: h.ds.uint(tSeriesNumber, 0), Description: h.ds.str(tSeriesDescription),
			Modality: h.ds.str(tModality), Files: len(g), Size: size})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, by
}

// ListSeries lists the series under path (a folder, recursively, or one file).
func ListSeries(path string) ([]Series, error) {
	hs, _, err := scan(context.Background(), []string{path})
	if err != nil {
		return nil, err
	}
	s, _ := group(hs)
	return s, nil
}

// Read reads the only series under path; several series give a *MultipleSeriesError.
func Read(path string) (*volumeT, error) { return ReadSeries(path, "") }

// ReadSeries reads series uid under path ("" when there is only one).
func ReadSeries(path, uid string) (*volumeT, error) {
	return ReadFiles([]string{path}, uid)
}

// ReadFiles reads series uid from files and folders.
func ReadFiles(paths []string, uid string) (*volumeT, error) {
	v, _, err := ReadFilesSeries(paths, uid)
	return v, err
}

// ReadFilesSeries is ReadFiles that also returns every series found (one scan).
func ReadFilesSeries(paths []string, uid string) (*volumeT, []Series, error) {
	return ReadFilesSeriesContext(context.Background(), paths, uid)
}

// ReadFilesSeriesContext is ReadFilesSeries that stops when ctx is done: no
// new file is opened or decoded after that, and the error wraps ctx.Err().
func ReadFilesSeriesContext(ctx context.Context, paths []string, uid string) (*volumeT, []Series, error) {
	name := strings.Join(paths, ", ")
	hs, notes, err := scan(ctx, paths)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: reading stopped: %w", name, ctx.Err())
		}
		return nil, nil, err
	}
	series, by := group(hs)
	v, err := readChosen(ctx, name, series, by, notes, uid)
	if err != nil && ctx.Err() != nil {
		return nil, series, fmt.Errorf("%s: reading stopped: %w", name, ctx.Err())
	}
	return v, series, err
}

func readChosen(ctx context.Context, name string, series []Series, by map[string][]*header, notes []string, uid string) (*volumeT, error) {
	var chosen []*header
	switch {
	case uid != "":
		chosen = by[uid]
		if chosen == nil {
			return nil, fmt.Errorf("%s: no series %s (found %d series)", name, uid, len(series))
		}
	case len(series) > 1:
		return nil, &MultipleSeriesError{Path: name, Series: series}
	default:
		chosen = by[series[0].UID]
	}
	v, err := build(ctx, name, chosen)
	if err != nil {
		return nil, err
	}
	v.Notes = append(notes, v.Notes...)
	return v, nil
}

// ReadBytes decodes a single DICOM file held in memory (the fuzz target's entry).
func ReadBytes(name string, data []byte) (v *volumeT, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%s: malformed DICOM (panic: %v)", name, r)
		}
	}()
	h, err := parseHeader(name, data, int64(len(data)), true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !h.hasPix {
		return nil, fmt.Errorf("%s: no pixel data", name)
	}
	if h.data == nil {
		h.data = data
	}
	return build(context.Background(), name, []*header{h})
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
