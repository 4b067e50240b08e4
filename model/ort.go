package model

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// The ONNX Runtime environment is process-global: one library, initialised once.
var ortState struct {
	mu   sync.Mutex
	lib  string // the library the environment was initialised with
	init bool
}

// ortLibNames are the file names looked for next to the executable.
var ortLibNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// FindORTLib resolves the ONNX Runtime shared library: explicit, else
// $MEDSA_ORT_LIB, else next to the executable, else <repo>/.cache/ort found by
// walking up from the executable and the working directory.
func FindORTLib(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("onnxruntime library (Options.ORTLib): %w", err)
		}
		return explicit, nil
	}
	if env := os.Getenv("MEDSA_ORT_LIB"); env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("onnxruntime library ($MEDSA_ORT_LIB): %w", err)
		}
		return env, nil
	}
	var tried []string
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dir := filepath.Dir(exe)
		for _, n := range ortLibNames {
			p := filepath.Join(dir, n)
			if isFile(p) {
				return p, nil
			}
			tried = append(tried, p)
		}
		starts = append(starts, dir)
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			p := filepath.Join(d, ".cache", "ort", "libonnxruntime.so.1")
			if isFile(p) {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		tried = append(tried, filepath.Join(s, "..", ".cache/ort/libonnxruntime.so.1"))
	}
	return "", fmt.Errorf("onnxruntime library not found: set $MEDSA_ORT_LIB (or Options.ORTLib), "+
		"put libonnxruntime.so.1 next to the executable, or run scripts/fetch-ort.sh for <repo>/.cache/ort "+
		"(looked at %s)", strings.Join(tried, ", "))
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// initORT initialises the process-global environment once; a later call with a
// different library is an error (the first one stays loaded).
func initORT(explicit string) (string, error) {
	ortState.mu.Lock()
	defer ortState.mu.Unlock()
	if ortState.init {
		if explicit != "" && explicit != ortState.lib {
			return "", fmt.Errorf("onnxruntime already initialised with %s, cannot switch to %s in one process", ortState.lib, explicit)
		}
		return ortState.lib, nil
	}
	lib, err := FindORTLib(explicit)
	if err != nil {
		return "", err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("onnxruntime: initialise with %s: %w", lib, err)
	}
	ortState.lib, ortState.init = lib, true
	return lib, nil
}

// ProviderInfo says where inference runs.
type ProviderInfo struct {
	Name           string // "CUDA" or "CPU"
	Requested      string // the Options.Device asked for
	FallbackReason string // why auto fell back to CPU ("" when it did not)
	Threads        int    // CPU intra-op threads of the encoders
	DecoderThreads int    // CPU intra-op threads of the decoder
	Library        string // the onnxruntime library in use
}

func (p ProviderInfo) String() string {
	s := fmt.Sprintf("%s (requested %s, %d encoder / %d decoder threads)", p.Name, p.Requested, p.Threads, p.DecoderThreads)
	if p.FallbackReason != "" {
		s += "; CUDA unavailable: " + p.FallbackReason
	}
	return s
}

// sessionSpec is one ONNX session to create.
type sessionSpec struct {
	path    string
	inputs  []string
	outputs []string
	spin    bool // allow intra-op thread spinning (latency-critical sessions)
	threads int
	cuda    bool
	noArena bool // release activation memory after each run (large batched sessions)
}

func newSession(sp sessionSpec) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(sp.threads); err != nil {
		return nil, err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, err
	}
	if !sp.spin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, err
		}
	}
	if sp.noArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return nil, err
		}
	}
	if sp.cuda {
		co, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, err
		}
		defer co.Destroy()
		if err := so.AppendExecutionProviderCUDA(co); err != nil {
			return nil, err
		}
	}
	return ort.NewDynamicAdvancedSession(sp.path, sp.inputs, sp.outputs, so)
}

// cudaReason shortens ORT's error about a missing CUDA provider to its cause.
func cudaReason(err error) string {
	s := err.Error()
	for _, key := range []string{"libcudnn", "libcublas", "libcudart", "libcufft", "libcurand", "libonnxruntime_providers_cuda", "CUDA"} {
		if i := strings.Index(s, key); i >= 0 {
			// Keep the line holding the key.
			start := strings.LastIndex(s[:i], "\n") + 1
			end := strings.Index(s[i:], "\n")
			if end < 0 {
				end = len(s) - i
			}
			return strings.TrimSpace(s[start : i+end])
		}
	}
	return s
}

// tensorInfo lists the names and shapes of a model's inputs and outputs.
func tensorInfo(path string) (in, out []ort.InputOutputInfo, err error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	_ = so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	_ = so.SetIntraOpNumThreads(1)
	return ort.GetInputOutputInfoWithOptions(path, so)
}

// checkTensors checks the manifest's tensor names against the ONNX file, and
// static dimensions against the manifest's shapes.
func checkTensors(m *Manifest, kind string, want map[string][]int64) error {
	path := m.FilePath(kind)
	in, out, err := tensorInfo(path)
	if err != nil {
		return fmt.Errorf("model: files.%s: read %s: %w", kind, path, err)
	}
	have := map[string]ort.InputOutputInfo{}
	var names []string
	for _, x := range append(in, out...) {
		have[x.Name] = x
		names = append(names, x.Name)
	}
	t := m.Tensors[kind]
	for _, group := range [][]string{t.Inputs, t.Outputs} {
		for _, n := range group {
			info, ok := have[n]
			if !ok {
				return fmt.Errorf("model: tensors.%s: %s has no tensor %q (it has %s)", kind, path, n, strings.Join(names, ", "))
			}
			if w, ok := want[n]; ok {
				d := info.Dimensions
				if len(d) != len(w) {
					return fmt.Errorf("model: tensors.%s: %q in %s has shape %v, manifest implies %v", kind, n, path, d, w)
				}
				for i := range d {
					if d[i] > 0 && w[i] > 0 && d[i] != w[i] {
						return fmt.Errorf("model: tensors.%s: %q in %s has shape %v, manifest implies %v", kind, n, path, d, w)
					}
				}
			}
		}
	}
	return nil
}

// defaultThreads is the CPU intra-op thread count when Options.Threads is 0.
var deprecatedModelVar sync.Once

func defaultThreads() int { return max(1, runtime.NumCPU()) }

var errNoCUDA = errors.New("CUDA execution provider unavailable")

func logf(format string, args ...any) { log.Printf("medsa/model: "+format, args...) }

// FindModelDir resolves the model directory, for the CLI and the GUI alike:
// explicit, else $MEDSA_MODEL_DIR (the GUI's old $MEDSA_MODEL is still read,
// with a deprecation note), else assets/model next to the executable or above
// it (share/medsa/assets/model of an installed tree included), else
// assets/model in the working directory or above it (a checkout).
func FindModelDir(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if env := os.Getenv("MEDSA_MODEL_DIR"); env != "" {
		return env, nil
	}
	if env := os.Getenv("MEDSA_MODEL"); env != "" {
		deprecatedModelVar.Do(func() { logf("note: $MEDSA_MODEL is deprecated: set $MEDSA_MODEL_DIR instead") })
		return env, nil
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			for _, p := range []string{filepath.Join(d, "assets", "model"), filepath.Join(d, "share", "medsa", "assets", "model")} {
				if isFile(filepath.Join(p, "manifest.json")) {
					return p, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("no model directory: pass --model DIR or set $MEDSA_MODEL_DIR (looked for assets/model/manifest.json above %s)",
		strings.Join(starts, " and "))
}
