// Package app is medsa's desktop application: the main window, menus,
// dialogs, shortcuts, status bar and preferences, wired to a
// workspace.Workspace that holds the document, its views and the jobs
// (opening, segmentation, propagation, saving, autosave). The UI goroutine
// never waits on I/O or inference: the workspace's jobs run in goroutines and
// post their results back with fyne.Do.
package app

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model"
	"github.com/medsa/medsa/workspace"
)

// AppID is the Fyne application id (preferences, recent files).
const AppID = "io.github.medsa"

// Options configure the application.
type Options struct {
	Path        string // image to open at start ("" offers the bundled sample)
	SeriesUID   string // DICOM series to open from a folder with several
	MaskPath    string // a saved mask to open on the image at start
	ModelDir    string // "" = model.FindModelDir: $MEDSA_MODEL_DIR, then assets/model near the binary or the working tree
	Device      string // auto, cuda, cpu
	SavePath    string // Ctrl+S writes here without a dialog ($MEDSA_SAVE_PATH)
	RecoveryDir string // autosave folder ("" = user cache dir/medsa/recovery)
	Autosave    time.Duration
	NoRecovery  bool   // do not offer recovery at start
	StateFile   string // test hook: write the slice view's geometry and events here ($MEDSA_STATE_FILE)
}

// OptionsFromEnv fills the options that tests and scripts set by environment.
// The model directory is left to model.FindModelDir, the CLI's lookup.
func OptionsFromEnv(o Options) Options {
	if o.SavePath == "" {
		o.SavePath = os.Getenv("MEDSA_SAVE_PATH")
	}
	if o.RecoveryDir == "" {
		o.RecoveryDir = os.Getenv("MEDSA_RECOVERY_DIR")
	}
	if o.StateFile == "" {
		o.StateFile = os.Getenv("MEDSA_STATE_FILE")
	}
	if o.Device == "" {
		o.Device = os.Getenv("MEDSA_DEVICE")
	}
	if o.RecoveryDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			o.RecoveryDir = filepath.Join(d, "medsa", "recovery")
		}
	}
	if o.Autosave == 0 {
		o.Autosave = 60 * time.Second
	}
	return o
}

// UI is the main window and its state.
type UI struct {
	A   fyne.App
	W   fyne.Window
	opt Options
	ws  *workspace.Workspace

	engMu sync.Mutex
	eng   *model.Engine // the concrete engine: provider and cache details, Close

	doc *doc // the open document's widgets (nil before the first open)

	// do and doAndWait run a function on the UI goroutine (fyne.Do); tests
	// replace them to run everything on the test's goroutine.
	do        func(func())
	doAndWait func(func())

	// widgets
	centre     *fyne.Container
	slider     *widget.Slider
	planeSel   *widget.Select
	presetSel  *widget.Select
	toolSel    *widget.RadioGroup
	brushSize  *widget.Slider
	labelList  *widget.List
	labelInfo  *widget.Label
	badge      *widget.Button
	encStatus  *widget.Label
	latency    *widget.Label
	readout    *widget.Label
	candStatus *widget.Label
	message    *widget.Label
	recentMenu *fyne.MenuItem

	openDlg   dialog.Dialog       // the open in progress
	openBar   *widget.ProgressBar // its progress (a PACS retrieval)
	propDlg   dialog.Dialog       // the propagation in progress
	propBar   *widget.ProgressBar // its progress
	propRange int                 // last "slices each way" of propagation
	quit      chan struct{}
	state     *stateWriter
	logf      func(format string, args ...any)
}

// Run opens the main window and blocks until it is closed.
func Run(opt Options) error {
	if (runtime.GOOS == "linux" || runtime.GOOS == "freebsd") && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		// GLFW would panic; say what to do instead.
		return errors.New("no display: the GUI needs X11 or Wayland (DISPLAY is not set); " +
			"use medsa info|convert|segment|bench without one, or run it under xvfb-run")
	}
	opt = OptionsFromEnv(opt)
	a := fyneapp.NewWithID(AppID)
	a.SetIcon(appIcon())
	u := New(a, opt)
	u.Start()
	if p := os.Getenv("MEDSA_BENCH_SCROLL"); p != "" {
		u.RunScrollBench(p)
	}
	u.W.ShowAndRun()
	u.shutdown()
	return nil
}

// New builds the window (not shown).
func New(a fyne.App, opt Options) *UI {
	u := &UI{A: a, opt: opt, quit: make(chan struct{}), propRange: 20, do: fyne.Do, doAndWait: fyne.DoAndWait}
	u.logf = func(format string, args ...any) { log.Printf("medsa: "+format, args...) }
	u.state = newStateWriter(opt.StateFile)
	u.ws = workspace.New(workspace.Options{RecoveryDir: opt.RecoveryDir, SavePath: opt.SavePath,
		Post: func(f func()) { u.do(f) }, OnEvent: u.onEvent})
	u.W = a.NewWindow("medsa")
	u.W.Resize(fyne.NewSize(1280, 860))
	u.build()
	u.W.SetCloseIntercept(u.closeIntercept)
	u.W.SetOnDropped(func(_ fyne.Position, uris []fyne.URI) {
		if len(uris) > 0 {
			u.guardUnsaved(func() { u.Open(uris[0].Path(), "") })
		}
	})
	return u
}

// Start opens the model and the first study in the background and starts autosave.
func (u *UI) Start() {
	go u.openEngine()
	go u.autosaveLoop()
	go u.statusLoop()
	if u.opt.Path != "" {
		u.Open(u.opt.Path, u.opt.SeriesUID)
	} else {
		u.offerSample()
	}
}

func (u *UI) autosaveLoop() { u.ws.RunAutosave(u.quit, u.opt.Autosave) }

func (u *UI) shutdown() {
	close(u.quit)
	u.ws.Close()
	u.engMu.Lock()
	if u.eng != nil {
		u.eng.Close()
	}
	u.engMu.Unlock()
}

// engine returns the model engine, or nil and why not.
func (u *UI) engine() (*model.Engine, error) {
	if _, err := u.ws.Engine(); err != nil {
		return nil, err
	}
	u.engMu.Lock()
	defer u.engMu.Unlock()
	return u.eng, nil
}

// --- layout ---

func (u *UI) build() {
	u.slider = widget.NewSlider(0, 1)
	u.slider.Orientation = widget.Vertical
	u.slider.Step = 1
	u.slider.Hide() // until a volume is open
	u.slider.OnChanged = func(f float64) {
		if d := u.doc; d != nil {
			// The vertical slider grows upwards; slices too.
			d.view.SetIndex(int(f))
		}
	}
	u.planeSel = widget.NewSelect([]string{"axial", "coronal", "sagittal"}, func(s string) {
		if d := u.doc; d != nil {
			p, err := volume.ParsePlane(s)
			if err != nil {
				u.setMessage("%v", err)
				return
			}
			d.view.SetPlane(p)
			u.syncSlider()
			d.view.TakeFocus()
		}
	})
	u.planeSel.SetSelected("axial")
	u.presetSel = widget.NewSelect(presetNames(), func(s string) { u.applyPreset(s) })
	u.presetSel.PlaceHolder = "window"
	u.toolSel = widget.NewRadioGroup([]string{"points", "box", "brush", "eraser"}, func(s string) { u.setTool(s) })
	u.toolSel.Horizontal = true
	u.toolSel.Required = true
	u.toolSel.SetSelected("points")
	u.brushSize = widget.NewSlider(1, 30)
	u.brushSize.SetValue(4)
	u.brushSize.OnChanged = func(f float64) {
		if d := u.doc; d != nil {
			d.ctrl.SetRadius(f)
		}
	}

	tb := widget.NewToolbar(
		widget.NewToolbarAction(theme.FolderOpenIcon(), u.openFileDialog),
		widget.NewToolbarAction(theme.DocumentSaveIcon(), u.Save),
		widget.NewToolbarSeparator(),
		widget.NewToolbarAction(theme.ContentUndoIcon(), u.Undo),
		widget.NewToolbarAction(theme.ContentRedoIcon(), u.Redo),
		widget.NewToolbarSeparator(),
		widget.NewToolbarAction(theme.ConfirmIcon(), u.Accept),
		widget.NewToolbarAction(theme.ContentClearIcon(), u.ClearPrompts),
		widget.NewToolbarAction(theme.MediaFastForwardIcon(), u.Propagate),
		widget.NewToolbarSeparator(),
		widget.NewToolbarAction(theme.ZoomFitIcon(), func() { u.withDoc(func(d *doc) { d.view.Fit() }) }),
		widget.NewToolbarAction(theme.HelpIcon(), u.showHelp),
	)
	brushBox := container.NewBorder(nil, nil, widget.NewLabel("brush"), nil, u.brushSize)
	top := container.NewVBox(
		container.NewHBox(tb, u.toolSel, widget.NewLabel("plane"), u.planeSel, u.presetSel),
		brushBox,
	)

	u.labelInfo = widget.NewLabel("")
	u.labelInfo.Wrapping = fyne.TextWrapWord
	u.labelList = u.newLabelList()
	addLabel := widget.NewButtonWithIcon("add label", theme.ContentAddIcon(), func() {
		u.withDoc(func(d *doc) { d.Sess.AddLabel("") })
	})
	editLabel := widget.NewButtonWithIcon("edit", theme.DocumentCreateIcon(), u.editActiveLabel)
	side := container.NewBorder(
		container.NewVBox(widget.NewLabelWithStyle("Labels", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			container.NewHBox(addLabel, editLabel)),
		container.NewVBox(widget.NewSeparator(), u.labelInfo,
			widget.NewButton("fill holes (slice)", u.FillHoles),
			widget.NewButton("clear slice", u.ClearSlice),
			widget.NewButton("clear label", u.ClearLabel)),
		nil, nil, u.labelList)

	u.badge = widget.NewButton("model…", u.showProvider)
	u.badge.Importance = widget.LowImportance
	u.encStatus = widget.NewLabel("")
	u.latency = widget.NewLabel("")
	u.readout = widget.NewLabel("")
	u.candStatus = widget.NewLabel("")
	u.message = widget.NewLabel("")
	// Long texts truncate instead of widening the window.
	u.readout.Truncation = fyne.TextTruncateEllipsis
	u.message.Truncation = fyne.TextTruncateEllipsis
	status := container.NewBorder(nil, nil,
		container.NewHBox(u.badge, u.encStatus, widget.NewSeparator(), u.latency, widget.NewSeparator(), u.candStatus, widget.NewSeparator()),
		nil,
		container.NewGridWithColumns(2, u.readout, u.message))

	u.centre = container.NewStack(widget.NewLabelWithStyle("Open an image (Ctrl+O) or drop it here.", fyne.TextAlignCenter, fyne.TextStyle{}))
	sideScroll := container.NewPadded(side)
	split := container.NewHSplit(container.NewBorder(nil, nil, nil, u.slider, u.centre), sideScroll)
	split.Offset = 0.8
	u.W.SetContent(container.NewBorder(top, status, nil, nil, split))
	u.W.SetMainMenu(u.menu())
	u.shortcuts()
	u.W.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if d := u.doc; d != nil {
			d.view.TypedKey(ev)
		}
	})
}

func (u *UI) withDoc(f func(d *doc)) {
	if u.doc != nil {
		f(u.doc)
	}
}

func (u *UI) menu() *fyne.MainMenu {
	u.recentMenu = fyne.NewMenuItem("Open recent", nil)
	u.recentMenu.ChildMenu = fyne.NewMenu("")
	u.refreshRecent()
	file := fyne.NewMenu("File",
		fyne.NewMenuItem("Open file…", u.openFileDialog),
		fyne.NewMenuItem("Open DICOM folder…", u.openFolderDialog),
		fyne.NewMenuItem("Open from PACS…", u.openPACSDialog),
		u.recentMenu,
		fyne.NewMenuItem("Open bundled sample…", func() {
			if files := sampleFiles(); len(files) > 0 {
				u.guardUnsaved(func() { u.chooseSample(files, "Bundled samples", "Open which sample?") })
			}
		}),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Open mask…", u.openMaskDialog),
		fyne.NewMenuItem("Save mask", u.Save),
		fyne.NewMenuItem("Save mask as…", u.SaveAs),
		fyne.NewMenuItem("Save as DICOM-SEG…", u.SaveDICOMSEG),
		fyne.NewMenuItem("Save to PACS (DICOM-SEG)", u.SaveToPACS),
		fyne.NewMenuItem("Export slice as PNG…", u.exportPNG),
	)
	edit := fyne.NewMenu("Edit",
		fyne.NewMenuItem("Undo", u.Undo),
		fyne.NewMenuItem("Redo", u.Redo),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Accept mask (Enter)", u.Accept),
		fyne.NewMenuItem("Next candidate (Tab)", u.Cycle),
		fyne.NewMenuItem("Clear prompts (Esc)", u.ClearPrompts),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Fill holes on slice", u.FillHoles),
		fyne.NewMenuItem("Clear slice", u.ClearSlice),
		fyne.NewMenuItem("Clear label", u.ClearLabel),
	)
	view := fyne.NewMenu("View",
		fyne.NewMenuItem("Axial", func() { u.planeSel.SetSelected("axial") }),
		fyne.NewMenuItem("Coronal", func() { u.planeSel.SetSelected("coronal") }),
		fyne.NewMenuItem("Sagittal", func() { u.planeSel.SetSelected("sagittal") }),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Single view", func() { u.SetLayout(false) }),
		fyne.NewMenuItem("2×2 views with crosshair (L)", func() { u.SetLayout(true) }),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Fit", func() { u.withDoc(func(d *doc) { d.view.Fit() }) }),
		fyne.NewMenuItem("1:1", func() { u.withDoc(func(d *doc) { d.view.OneToOne() }) }),
	)
	seg := fyne.NewMenu("Segment",
		fyne.NewMenuItem("Propagate through the volume", u.Propagate),
		fyne.NewMenuItem("Model and device…", u.showProvider),
	)
	help := fyne.NewMenu("Help", fyne.NewMenuItem("Keyboard shortcuts", u.showHelp))
	return fyne.NewMainMenu(file, edit, view, seg, help)
}

func (u *UI) shortcuts() {
	c := u.W.Canvas()
	add := func(k fyne.KeyName, mod fyne.KeyModifier, f func()) {
		c.AddShortcut(&desktop.CustomShortcut{KeyName: k, Modifier: mod}, func(fyne.Shortcut) { f() })
	}
	ctl := fyne.KeyModifierShortcutDefault
	// Fyne reports Ctrl+Z / Ctrl+Y as its standard undo/redo shortcuts.
	c.AddShortcut(&fyne.ShortcutUndo{}, func(fyne.Shortcut) { u.Undo() })
	c.AddShortcut(&fyne.ShortcutRedo{}, func(fyne.Shortcut) { u.Redo() })
	add(fyne.KeyZ, ctl|fyne.KeyModifierShift, u.Redo)
	add(fyne.KeyS, ctl, u.Save)
	add(fyne.KeyS, ctl|fyne.KeyModifierShift, u.SaveAs)
	add(fyne.KeyO, ctl, u.openFileDialog)
	add(fyne.KeyP, ctl, u.Propagate)
}

// onKey handles keys typed on the slice view; true when consumed.
func (u *UI) onKey(ev *fyne.KeyEvent) bool {
	d := u.doc
	if d == nil {
		return false
	}
	switch ev.Name {
	case fyne.KeyReturn, fyne.KeyEnter:
		u.Accept()
	case fyne.KeyEscape:
		u.ClearPrompts()
	case fyne.KeyTab:
		u.Cycle()
	case fyne.KeyP:
		u.toolSel.SetSelected("points")
	case fyne.KeyX:
		u.toolSel.SetSelected("box")
	case fyne.KeyB:
		u.toolSel.SetSelected("brush")
	case fyne.KeyE:
		u.toolSel.SetSelected("eraser")
	case fyne.KeyLeftBracket:
		u.brushSize.SetValue(u.brushSize.Value - 1)
	case fyne.KeyRightBracket:
		u.brushSize.SetValue(u.brushSize.Value + 1)
	case fyne.KeyF:
		d.view.Fit()
	case fyne.KeyL:
		u.SetLayout(len(d.views) < 2)
	case fyne.KeyA:
		u.planeSel.SetSelected("axial")
	case fyne.KeyC:
		u.planeSel.SetSelected("coronal")
	case fyne.KeyS:
		u.planeSel.SetSelected("sagittal")
	default:
		return false
	}
	return true
}

func (u *UI) setTool(s string) {
	d := u.doc
	if d == nil {
		return
	}
	defer d.view.TakeFocus() // keys go back to the image, not the radio group
	switch s {
	case "points":
		d.ctrl.SetTool(interaction.ToolPrompt)
	case "box":
		d.ctrl.SetTool(interaction.ToolBox)
	case "brush":
		d.ctrl.SetTool(interaction.ToolBrush)
	case "eraser":
		d.ctrl.SetTool(interaction.ToolEraser)
	}
}

// --- title, slider, messages ---

func (u *UI) updateTitle() {
	d := u.doc
	if d == nil {
		u.W.SetTitle("medsa")
		return
	}
	t := "medsa — " + d.Name()
	if d.Dirty() {
		t += " *"
	}
	u.W.SetTitle(t)
}

func (u *UI) syncSlider() {
	d := u.doc
	if d == nil {
		return
	}
	n := d.view.NumSlices()
	u.slider.Min, u.slider.Max = 0, float64(max(n-1, 1))
	if n <= 1 {
		u.slider.Hide()
	} else {
		u.slider.Show()
	}
	u.slider.Value = float64(d.view.Key().Index)
	u.slider.Refresh()
}

func (u *UI) setMessage(format string, args ...any) {
	u.message.SetText(fmt.Sprintf(format, args...))
}

// showError shows err in a dialog and logs it.
func (u *UI) showError(err error) {
	if err == nil {
		return
	}
	u.logf("error: %v", err)
	dialog.ShowError(err, u.W)
}
