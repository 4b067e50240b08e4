# medsa — `make run` opens the GUI on the bundled sample; `make test` runs everything CI runs.
SHELL := /bin/bash
GO ?= go
export MEDSA_ORT_LIB ?= $(CURDIR)/.cache/ort/libonnxruntime.so.1
export OMP_WAIT_POLICY := PASSIVE
# Tests that need fetched images fail instead of skipping under make (the Makefile fetches them first).
export MEDSA_REQUIRE_TESTDATA := 1
STAMP := .cache/setup.stamp

.PHONY: all setup build run test lint unit extra fuzz bench testdata model package gpu clean highdicom-venv triton-venv serve

all: build

# Setup is idempotent; the stamp only skips re-checking when nothing changed.
$(STAMP): scripts/setup.sh scripts/fetch-ort.sh go.mod
	@mkdir -p .cache
	scripts/setup.sh
	@touch $@
setup: $(STAMP)

build: setup
	$(GO) build -o bin/medsa .

run: build testdata
	./bin/medsa $(shell scripts/sample-path.sh)

testdata: setup
	scripts/testdata.sh

lint: setup
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every package runs under the race detector too, app/ and viewer/ with Fyne's
# test driver (their tests run the UI's posted work on the test goroutine, as
# the real driver runs it on its main one).
RACE_PKGS = $(shell $(GO) list ./...)
unit: setup testdata
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

# Outside referees (dcm2niix, nibabel), the model smoke test, the real-window GUI test: scripts/test.d/*.sh.
extra: build testdata triton-venv
	@set -e; for s in scripts/test.d/*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s"; done

fuzz: setup testdata
	scripts/fuzz.sh

test: lint unit extra fuzz
	@echo "make test: all green"

# Benchmarks, each a ratio against a peer in the same run: scripts/bench.d/*.sh.
bench: build testdata
	@set -e; for s in scripts/bench.d/*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s"; done

# highdicom, a further DICOM-SEG referee (scripts/test.d/dicomseg-referee.sh): a venv over Debian's
# pydicom, numpy and pillow, with pinned versions.
HIGHDICOM_VENV := .cache/highdicom-venv
highdicom-venv: $(HIGHDICOM_VENV)/.ok
$(HIGHDICOM_VENV)/.ok:
	/usr/bin/python3 -m venv --system-site-packages $(HIGHDICOM_VENV)
	$(HIGHDICOM_VENV)/bin/pip install --no-input --disable-pip-version-check highdicom==0.22.0 pillow-jpls==1.3.2
	@touch $@

# Triton Inference Server from PyPI for the remote encoder (docs/SERVER.md): nvidia-pytriton's wheel carries the
# tritonserver binary; onnxruntime runs our ONNX in its Python backend. Pinned in scripts/serve-requirements.txt.
TRITON_VENV := .cache/triton-venv
triton-venv: $(TRITON_VENV)/.ok
$(TRITON_VENV)/.ok: scripts/serve-requirements.txt
	rm -rf $(TRITON_VENV)
	/usr/bin/python3 -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --no-input --disable-pip-version-check -q -r scripts/serve-requirements.txt
	@touch $@

# Triton on the bundled model in the foreground: http://$(HOST):$(PORT) (loopback unless HOST is given);
# TOKEN_FILE=F requires "Authorization: Bearer <F's contents>". Then: medsa --server http://127.0.0.1:8000
# gRPC on GRPC_PORT (grpc://127.0.0.1:8001; GRPC_PORT= for none).
PORT ?= 8000
GRPC_PORT ?= 8001
HOST ?= 127.0.0.1
serve: build triton-venv
	scripts/serve.sh --port $(PORT) --host $(HOST) $(if $(GRPC_PORT),--grpc-port $(GRPC_PORT)) $(if $(TOKEN_FILE),--token-file $(TOKEN_FILE))

model: setup testdata
	$(MAKE) -C model/train model

gpu:
	scripts/fetch-ort-gpu.sh

package: build
	scripts/package.sh

clean:
	rm -rf bin dist
