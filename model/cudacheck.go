package model

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// try_dlopen loads and unloads a library; returns NULL or dlerror()'s message.
static const char *try_dlopen(const char *path) {
	void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		return dlerror();
	}
	dlclose(h);
	return NULL;
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"
)

// cudaPreflight says why the CUDA provider of the onnxruntime library lib
// cannot load ("" when its libraries load): ORT itself only reports "Failed to
// load shared library", while dlopen names the missing dependency (e.g.
// "libcudnn.so.9: cannot open shared object file").
func cudaPreflight(lib string) string {
	dir := filepath.Dir(lib)
	shared := filepath.Join(dir, "libonnxruntime_providers_shared.so")
	cuda := filepath.Join(dir, "libonnxruntime_providers_cuda.so")
	for _, p := range []string{shared, cuda} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("%s not found: %s is a CPU-only onnxruntime (make gpu, then MEDSA_ORT_LIB=.cache/ort-gpu/libonnxruntime.so)",
				filepath.Base(p), lib)
		}
	}
	// cuDNN is loaded at run time, not a link dependency: check it too.
	for _, p := range []string{shared, cuda, "libcudnn.so.9"} {
		cs := C.CString(p)
		msg := C.try_dlopen(cs)
		C.free(unsafe.Pointer(cs))
		if msg != nil {
			return C.GoString(msg)
		}
	}
	return ""
}
