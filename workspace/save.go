package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Save writes d's labels to path in the background (Saved); ps != nil
// exports one slice as PNG (an export: the saved state does not change). A
// .png path on a volume saves the active view's slice.
func (w *Workspace) Save(d *Doc, path string, ps *PNGSlice) {
	if ps == nil && strings.HasSuffix(strings.ToLower(path), ".png") && d.Vol.Size[2] > 1 {
		k := d.Active().Key()
		ps = &PNGSlice{Axis: d.Axis(k.Plane), Index: k.Index}
	}
	go func() {
		t0 := timeNow()
		lm, table, recs, gen := d.Sess.SnapshotLabels()
		err := SaveMask(path, lm, table, w.Meta(d, table, recs), ps)
		el := timeNow().Sub(t0)
		w.post(func() {
			if err == nil && ps == nil {
				d.markSaved(gen)
				// Edits made while the save ran may be in the recovery file by now: keep it
				// then, and let the next autosave rewrite it.
				if d.Sess.Generation() == gen {
					w.RemoveRecovery(d)
				} else {
					d.mu.Lock()
					d.autoGen = 0 // not a generation a session reports after edits: the next autosave runs
					d.mu.Unlock()
				}
			}
			w.emit(Saved{Path: path, Export: ps != nil, Elapsed: el, Err: err})
		})
	}()
}

// OpenMask reads a saved mask onto d in the background (MaskLoaded); the
// loaded state counts as saved, and Save writes back there unless a save
// path was set.
func (w *Workspace) OpenMask(d *Doc, path string) {
	go func() {
		lm, table, recs, err := LoadMask(path, d.Vol)
		w.post(func() {
			if err == nil && w.Doc() != d {
				return // another document meanwhile
			}
			if err == nil {
				err = d.Sess.LoadLabelMap(lm, table)
			}
			if err == nil {
				d.Sess.SetRecords(recs)
				d.MarkSaved()
				d.mu.Lock()
				if d.savePath == "" {
					d.savePath = path
				}
				d.mu.Unlock()
			}
			w.emit(MaskLoaded{Path: path, Err: err})
		})
	}()
}

// --- autosave and recovery ---

// RecoveryPaths are the autosave files of a source image in dir.
func RecoveryPaths(dir, source string) (maskPath, meta string) {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, strings.TrimPrefix(filepath.Clean(source), "/"))
	if len(name) > 120 {
		name = name[len(name)-120:]
	}
	return filepath.Join(dir, name+".recovery.nii.gz"), filepath.Join(dir, name+".recovery.json")
}

// Recovery returns d's recovery file and when it was written, if there is one.
func (w *Workspace) Recovery(d *Doc) (path string, at time.Time, ok bool) {
	if d == nil || w.opt.RecoveryDir == "" {
		return "", time.Time{}, false
	}
	p, _ := RecoveryPaths(w.opt.RecoveryDir, d.Path)
	st, err := os.Stat(p)
	if err != nil {
		return "", time.Time{}, false
	}
	return p, st.ModTime(), true
}

// Recover loads d's recovery file in the background (MaskLoaded, Recovered);
// the recovered labels are unsaved changes.
func (w *Workspace) Recover(d *Doc) {
	p, _, ok := w.Recovery(d)
	if !ok {
		return
	}
	go func() {
		lm, table, recs, err := LoadMask(p, d.Vol)
		w.post(func() {
			if err != nil {
				err = fmt.Errorf("recovery file unusable: %w", err)
			} else {
				err = d.Sess.LoadLabelMap(lm, table)
			}
			if err == nil {
				d.Sess.SetRecords(recs)
			}
			w.emit(MaskLoaded{Path: p, Recovered: true, Err: err})
		})
	}()
}

// RemoveRecovery deletes d's recovery files (after a save, or when declined).
func (w *Workspace) RemoveRecovery(d *Doc) {
	if d == nil || w.opt.RecoveryDir == "" {
		return
	}
	m, j := RecoveryPaths(w.opt.RecoveryDir, d.Path)
	for _, p := range []string{m, j} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			w.post(func() { w.emit(Autosaved{Path: p, Err: fmt.Errorf("remove recovery file: %w", err)}) })
		}
	}
}

// Autosave writes the recovery file of the open document when it changed
// since the last save and the last autosave; false when there was nothing to
// write. It may run on any goroutine (the loop's).
func (w *Workspace) Autosave() (bool, error) {
	d := w.Doc()
	if d == nil || w.opt.RecoveryDir == "" {
		return false, nil
	}
	gen := d.Sess.Generation()
	d.mu.Lock()
	skip := gen == d.autoGen || gen == d.savedGen
	d.mu.Unlock()
	if skip {
		return false, nil
	}
	if err := os.MkdirAll(w.opt.RecoveryDir, 0o755); err != nil {
		return false, fmt.Errorf("autosave: %w", err)
	}
	lm, table, recs, g := d.Sess.SnapshotLabels()
	p, _ := RecoveryPaths(w.opt.RecoveryDir, d.Path)
	if err := SaveMask(p, lm, table, w.Meta(d, table, recs), nil); err != nil {
		return false, fmt.Errorf("autosave: %w", err)
	}
	d.mu.Lock()
	d.autoGen = g
	d.mu.Unlock()
	return true, nil
}

// KickAutosave asks the autosave loop to run now (after an accepted mask, a
// propagation, a label-table edit).
func (w *Workspace) KickAutosave() {
	w.mu.Lock()
	if w.kick == nil {
		w.kick = make(chan struct{}, 1)
	}
	k := w.kick
	w.mu.Unlock()
	select {
	case k <- struct{}{}:
	default:
	}
}

// RunAutosave autosaves every interval and on each kick until quit closes
// (Autosaved events after each write or failure).
func (w *Workspace) RunAutosave(quit <-chan struct{}, every time.Duration) {
	w.mu.Lock()
	if w.kick == nil {
		w.kick = make(chan struct{}, 1)
	}
	kick := w.kick
	w.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		case <-kick:
		}
		wrote, err := w.Autosave()
		if wrote || err != nil {
			p := ""
			if d := w.Doc(); d != nil && w.opt.RecoveryDir != "" {
				p, _ = RecoveryPaths(w.opt.RecoveryDir, d.Path)
			}
			w.post(func() { w.emit(Autosaved{Path: p, Err: err}) })
		}
	}
}
