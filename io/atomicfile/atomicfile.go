// Package atomicfile replaces a file atomically: the new content is written to a
// temporary file in the same folder, synced, and renamed over the target, and the
// folder is synced. A crash or an error at any point leaves the previous file intact.
//
// Several files can be replaced together (Create, then Commit): all of them or,
// when one rename fails, none. The temporary files of saves in progress are
// registered, so a process ended by a signal removes them (HandleSignals), and the
// ones a killed process left behind are removed by the next save to the same
// target (see removeStale).
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Write calls write with a buffered writer on a temporary file next to path, then
// makes that file path. On any error the temporary file is removed and an existing
// file at path is left untouched. An existing file's permissions are kept; a new
// file gets 0644.
func Write(path string, write func(w io.Writer) error) error {
	p, err := Create(path, write)
	if err != nil {
		return err
	}
	return Commit(p)
}

// WriteFile is Write for a byte slice.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Pending is a file written in full (and synced) under a temporary name next to
// its target, not yet renamed over it: Commit it or Abort it.
type Pending struct {
	path, tmp string
}

// Path is the file a Pending replaces.
func (p *Pending) Path() string { return p.path }

// tempPrefix is how every temporary file (and backup) of ours for path's base name
// starts: ".NAME.tmp-"; then the writer's process id, "-" and a random number.
// Files written before the process id was part of the name end in the number alone.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// Create writes the content to a temporary file next to path through a buffered
// writer, syncs and closes it. On error nothing is left behind.
func Create(path string, write func(w io.Writer) error) (_ *Pending, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if st, serr := os.Stat(path); serr == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("save %s: is a folder", path)
		}
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	tmp := f.Name()
	register(tmp, true)
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			unregister(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	if err = f.Chmod(mode); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return nil, fmt.Errorf("save %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	return &Pending{path: path, tmp: tmp}, nil
}

// Abort removes a pending file's temporary file (nothing after Commit).
func (p *Pending) Abort() {
	if p == nil || p.tmp == "" {
		return
	}
	os.Remove(p.tmp)
	unregister(p.tmp)
	p.tmp = ""
}

// link makes a backup of a target before it is replaced; a variable so tests can
// take the rename-aside path of file systems without hard links.
var link = os.Link

// Commit renames each pending file over its target, in order. With several files
// it is all or nothing: each existing target is first kept as a backup (a hard
// link, or where the file system has none, renamed aside), and if a rename fails
// the targets already replaced are restored and the remaining temporary files are
// removed. Backups are named like temporary files, so one left by a crash is
// removed by the next save to that target.
func Commit(ps ...*Pending) (err error) {
	commitMu.RLock() // a signal's cleanup waits for renames in flight
	defer commitMu.RUnlock()
	type done struct {
		p      *Pending
		backup string // "" when the target did not exist
	}
	var committed []done
	defer func() {
		for _, p := range ps {
			p.Abort() // the ones not renamed (after success: none left)
		}
		for _, d := range committed {
			if d.backup == "" {
				continue
			}
			if err != nil {
				os.Rename(d.backup, d.p.path)
			} else {
				os.Remove(d.backup)
			}
			unregister(d.backup)
		}
		if err != nil {
			for _, d := range committed {
				if d.backup == "" {
					os.Remove(d.p.path) // it did not exist before
				}
			}
		}
	}()
	for _, p := range ps {
		if p == nil || p.tmp == "" {
			return errors.New("atomicfile: commit of a file not pending")
		}
		d := done{p: p}
		if len(ps) > 1 {
			if d.backup, err = backup(p.path); err != nil {
				return fmt.Errorf("save %s: %w", p.path, err)
			}
		}
		if err = os.Rename(p.tmp, p.path); err != nil {
			if d.backup != "" {
				committed = append(committed, d) // put a target renamed aside back
			}
			return fmt.Errorf("save %s: %w", p.path, err)
		}
		unregister(p.tmp)
		p.tmp = ""
		committed = append(committed, d)
	}
	// The renames are durable only once the folder's entries are on disk.
	synced := map[string]bool{}
	for _, p := range ps {
		dir := filepath.Dir(p.path)
		if synced[dir] {
			continue
		}
		synced[dir] = true
		if d, derr := os.Open(dir); derr == nil {
			serr := d.Sync()
			d.Close()
			if serr != nil && !errors.Is(serr, os.ErrInvalid) {
				return fmt.Errorf("save %s: sync folder: %w", p.path, serr)
			}
		}
	}
	for _, p := range ps {
		removeStale(p.path)
	}
	return nil
}

// backup keeps the current content of path under a temporary name ("" when there
// is no file at path yet).
func backup(path string) (string, error) {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	dir, base := filepath.Split(path)
	for range 10 {
		b := filepath.Join(dir, tempPrefix(base)+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		register(b, false) // never removed by a signal: it may be the only copy
		err = link(path, b)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrExist) {
			// no hard links here: move the target aside (it is missing until the
			// rename that follows, or the restore after a failed one)
			if rerr := os.Rename(path, b); rerr != nil {
				unregister(b)
				return "", fmt.Errorf("keep a backup: %w", rerr)
			}
			return b, nil
		}
		unregister(b)
	}
	return "", fmt.Errorf("keep a backup: %w", err)
}

// The registry of our temporary files: true for those a signal removes.
var (
	regMu    sync.Mutex
	registry = map[string]bool{}
	commitMu sync.RWMutex
)

func register(p string, removeOnSignal bool) {
	regMu.Lock()
	registry[p] = removeOnSignal
	regMu.Unlock()
}

func unregister(p string) {
	regMu.Lock()
	delete(registry, p)
	regMu.Unlock()
}

func registered(p string) bool {
	regMu.Lock()
	defer regMu.Unlock()
	_, ok := registry[p]
	return ok
}

// RemoveTemps removes the temporary files of every save in progress, after any
// commit in flight has finished (those saves then fail). A process about to die
// calls it; it returns how many it removed. Saves started afterwards block.
func RemoveTemps() int {
	commitMu.Lock() // not released: the process is ending
	regMu.Lock()
	defer regMu.Unlock()
	n := 0
	for p, rm := range registry {
		if rm && os.Remove(p) == nil {
			n++
		}
	}
	return n
}

// Stale temporary files: a dead writer's are removed at once; a living process's
// only after staleAlive (its PID may have been reused); files named before the
// process id was part of the name, after staleNoPID.
var (
	staleAlive = time.Hour
	staleNoPID = time.Minute
)

// removeStale removes the temporary files of ours that earlier saves to path left
// behind (a SIGKILL, a power cut): only regular files named exactly as Create and
// backup name them, and only when their writer is gone (see staleAlive). Errors are
// ignored: this is housekeeping after a successful save.
func removeStale(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	prefix := tempPrefix(base)
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !e.Type().IsRegular() {
			continue
		}
		pid, hasPID, ok := parseTemp(name[len(prefix):])
		if !ok {
			continue
		}
		p := filepath.Join(dir, name)
		if registered(p) {
			continue // a save of this process in progress
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		age := time.Since(info.ModTime())
		stale := false
		switch {
		case !hasPID:
			stale = age > staleNoPID
		case pid == os.Getpid():
			// Ours and not registered: a save that could not clean up, or (another container
			// where we are also PID 1, a save of ours between create and register) not
			// ours at all; an age bound tells them apart.
			stale = age > staleNoPID
		default:
			stale = !processAlive(pid) || age > staleAlive
		}
		if stale {
			os.Remove(p)
		}
	}
}

// parseTemp reads the tail of a temporary name: "PID-RANDOM" or (older) "RANDOM".
func parseTemp(s string) (pid int, hasPID, ok bool) {
	digits := func(s string) bool {
		if s == "" || len(s) > 20 {
			return false
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	a, b, two := strings.Cut(s, "-")
	if !two {
		return 0, false, digits(s)
	}
	if !digits(a) || !digits(b) {
		return 0, false, false
	}
	pid, err := strconv.Atoi(a)
	if err != nil || pid <= 0 {
		return 0, false, false
	}
	return pid, true, true
}
