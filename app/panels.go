package app

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"log"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/volume"
)

// --- window presets ---

type preset struct {
	name string
	w    [2]float64 // center, width; width 0 = auto / file default
	auto bool
}

var presets = []preset{
	{name: "CT soft tissue (40/400)", w: [2]float64{40, 400}},
	{name: "CT lung (−600/1500)", w: [2]float64{-600, 1500}},
	{name: "CT bone (400/1800)", w: [2]float64{400, 1800}},
	{name: "CT brain (40/80)", w: [2]float64{40, 80}},
	{name: "auto (0.5–99.5 %)", auto: true},
	{name: "file default"},
}

func presetNames() []string {
	out := make([]string, len(presets))
	for i, p := range presets {
		out[i] = p.name
	}
	return out
}

func (u *UI) applyPreset(name string) {
	d := u.doc
	if d == nil {
		return
	}
	defer d.view.TakeFocus()
	for _, p := range presets {
		if p.name != name {
			continue
		}
		switch {
		case p.auto:
			d.view.SetWindow(d.Vol.AutoWindow())
		case p.w[1] == 0:
			w := d.Vol.Window
			if w[1] <= 0 {
				w = d.Vol.AutoWindow()
			}
			d.view.SetWindow(w)
		default:
			d.view.SetWindow(p.w)
		}
	}
}

// --- labels panel ---

func (u *UI) newLabelList() *widget.List {
	var l *widget.List
	l = widget.NewList(
		func() int {
			if u.doc == nil {
				return 0
			}
			return len(u.doc.Sess.Labels())
		},
		func() fyne.CanvasObject {
			sw := canvas.NewRectangle(color.White)
			sw.SetMinSize(fyne.NewSize(18, 18))
			vis := widget.NewCheck("", nil)
			return container.NewBorder(nil, nil, container.NewHBox(vis, sw), nil, widget.NewLabel("label"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			d := u.doc
			if d == nil {
				return
			}
			labs := d.Sess.Labels()
			if id >= len(labs) {
				return
			}
			lab := labs[id]
			c := o.(*fyne.Container)
			name := c.Objects[0].(*widget.Label)
			left := c.Objects[1].(*fyne.Container)
			vis := left.Objects[0].(*widget.Check)
			sw := left.Objects[1].(*canvas.Rectangle)
			sw.FillColor = color.RGBA{lab.Color[0], lab.Color[1], lab.Color[2], 255}
			sw.Refresh()
			vis.OnChanged = nil
			vis.SetChecked(lab.Visible)
			v := lab.Value
			vis.OnChanged = func(on bool) {
				if err := d.Sess.SetLabelVisible(v, on); err != nil {
					u.setMessage("%v", err)
				}
			}
			val, unit := d.Sess.Measure(lab.Value)
			mark := ""
			if lab.Value == d.Sess.Active() {
				mark = "• "
			}
			name.SetText(fmt.Sprintf("%s%s  %s", mark, lab.Name, formatSize(val, unit)))
		})
	l.OnSelected = func(id widget.ListItemID) {
		if d := u.doc; d != nil {
			labs := d.Sess.Labels()
			if id < len(labs) {
				if err := d.Sess.SetActive(labs[id].Value); err != nil {
					u.setMessage("%v", err)
				}
			}
		}
	}
	return l
}

func (u *UI) updateLabelInfo() {
	d := u.doc
	if d == nil {
		u.labelInfo.SetText("")
		return
	}
	l, ok := d.Sess.Label(d.Sess.Active())
	if !ok {
		u.labelInfo.SetText("")
		return
	}
	v, unit := d.Sess.Measure(l.Value)
	u.labelInfo.SetText(fmt.Sprintf("Active: %s\n%d voxels · %s\nopacity %.0f %%", l.Name, d.Sess.VoxelCount(l.Value), formatSize(v, unit), l.Opacity*100))
}

func formatSize(v float64, unit string) string {
	if unit == "px" {
		return fmt.Sprintf("%.0f px", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

// editActiveLabel edits name, colour, visibility and opacity of the active label.
func (u *UI) editActiveLabel() {
	d := u.doc
	if d == nil {
		return
	}
	l, ok := d.Sess.Label(d.Sess.Active())
	if !ok {
		return
	}
	name := widget.NewEntry()
	name.SetText(l.Name)
	op := widget.NewSlider(0, 100)
	op.SetValue(l.Opacity * 100)
	vis := widget.NewCheck("visible", nil)
	vis.SetChecked(l.Visible)
	col := l.Color
	sw := canvas.NewRectangle(color.RGBA{col[0], col[1], col[2], 255})
	sw.SetMinSize(fyne.NewSize(40, 20))
	pick := widget.NewButton("colour…", func() {
		dialog.ShowColorPicker("Label colour", "", func(c color.Color) {
			r, g, b, _ := c.RGBA()
			col = [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
			sw.FillColor = color.RGBA{col[0], col[1], col[2], 255}
			sw.Refresh()
		}, u.W)
	})
	form := widget.NewForm(
		widget.NewFormItem("name", name),
		widget.NewFormItem("colour", container.NewHBox(sw, pick)),
		widget.NewFormItem("opacity", op),
		widget.NewFormItem("", vis),
	)
	dialog.ShowCustomConfirm(volume.DefaultLabelName(l.Value), "Apply", "Cancel", form, func(ok bool) {
		if !ok {
			return
		}
		// The label may have gone meanwhile (a mask opened): say so once.
		err := errors.Join(d.Sess.RenameLabel(l.Value, name.Text), d.Sess.SetLabelColor(l.Value, col),
			d.Sess.SetLabelOpacity(l.Value, op.Value/100), d.Sess.SetLabelVisible(l.Value, vis.Checked))
		if err != nil {
			u.showError(fmt.Errorf("edit label: %w", err))
		}
	}, u.W)
}

// --- help ---

const shortcutsText = `Mouse
  left click            positive point
  right click / Shift+click   negative point
  left drag             box (draw it close around the structure: a loose margin
                        partly ends up in the mask; model/train/REPORT.md, stop 27)
  right drag            window/level (horizontal: width, vertical: level)
  middle drag           pan
  wheel                 next/previous slice
  Ctrl+wheel            zoom around the pointer

Keys
  Enter                 accept the preview into the active label
  Tab                   next candidate mask
  Esc                   clear the prompts of this slice
  Up/Down, PgUp/PgDn    scroll 1 / 10 slices;  Home/End first/last
  A / C / S             axial / coronal / sagittal
  P / X / B / E         points / box / brush / eraser
  [ / ]                 brush smaller / larger
  F                     fit to window
  L                     one view / 2×2 views (axial, coronal, sagittal) with a linked crosshair
  Ctrl+Z, Ctrl+Shift+Z (Ctrl+Y)   undo, redo (prompts, masks and brush edits)
  Ctrl+S, Ctrl+Shift+S  save mask (NIfTI + JSON sidecar), save as
  Ctrl+O                open an image
  Ctrl+P                propagate through the volume`

func (u *UI) showHelp() {
	t := widget.NewLabel(shortcutsText)
	t.TextStyle.Monospace = true
	dialog.ShowCustom("Keyboard shortcuts", "Close", container.NewVScroll(t), u.W)
}

// --- icon ---

//go:embed icon.png
var iconPNG []byte

func appIcon() fyne.Resource { return fyne.NewStaticResource("icon.png", iconPNG) }

// IconImage decodes the application icon (for checks).
func IconImage() error {
	_, err := png.Decode(bytes.NewReader(iconPNG))
	return err
}

// --- state file (a test hook for the real-window test) ---

// stateWriter keeps a JSON file describing the slice view's geometry on the
// window and the last events, so a script driving the real window with
// xdotool knows where to click and what happened. Off when path is "".
type stateWriter struct {
	path   string
	mu     sync.Mutex
	st     map[string]any
	failed bool // a write failed (logged once)
}

func newStateWriter(path string) *stateWriter {
	return &stateWriter{path: path, st: map[string]any{}}
}

func (s *stateWriter) flush() {
	data, err := json.MarshalIndent(s.st, "", " ")
	if err == nil {
		err = atomicfile.WriteFile(s.path, data)
	}
	if err != nil && !s.failed {
		s.failed = true // once: the file is a test hook, not worth a log line per event
		log.Printf("medsa: state file: %v", err)
	}
}

// event records an event with its time and count.
func (s *stateWriter) event(name string, v any) {
	if s.path == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := s.st["count_"+name].(int)
	s.st["count_"+name] = n + 1
	s.st[name] = v
	s.flush()
}

// attach writes the view's geometry once laid out, and the voxel of each new prompt point.
func (s *stateWriter) attach(u *UI, d *doc) {
	if s.path == "" {
		return
	}
	prev := d.view.OnPrompt
	d.view.OnPrompt = func(k interaction.SliceKey, down time.Time) {
		if p, _ := d.Sess.Prompts(k); len(p.Points) > 0 {
			pt := p.Points[len(p.Points)-1]
			s.event("point_voxel", d.Voxel(k, int(pt.U), int(pt.V)))
		}
		prev(k, down)
	}
	go func() {
		for i := 0; i < 50; i++ {
			select {
			case <-u.quit:
				return
			default:
			}
			done := false
			u.doAndWait(func() {
				if u.doc != d || d.view.Size().Width < 10 {
					return
				}
				pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(d.view)
				sz := d.view.Size()
				k := d.view.Key()
				W, H := d.Sess.SliceSize(k.Plane)
				c := d.view.ToScreen(W/2, H/2)
				s.mu.Lock()
				s.st["view"] = map[string]any{"x": pos.X, "y": pos.Y, "w": sz.Width, "h": sz.Height,
					"scale": u.W.Canvas().Scale(), "centre_x": pos.X + c.X, "centre_y": pos.Y + c.Y}
				s.st["slice"] = map[string]any{"plane": k.Plane.String(), "index": k.Index, "w": W, "h": H}
				s.st["title"] = u.W.Title()
				s.flush()
				s.mu.Unlock()
				done = i > 3
			})
			if done {
				return
			}
			select {
			case <-u.quit:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}
