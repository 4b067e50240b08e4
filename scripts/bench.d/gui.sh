#!/usr/bin/env bash
# GUI benchmarks:
#  1. render one 512x512 slice with W/L, label overlay (with outlines) and the preview mask: budget 8 ms;
#     peer: the same pixel work in numpy (what a napari/Python viewer does), ratio reported;
#  2. scrolling a >= 300-slice CT in the real window under Xvfb with software GL (Mesa llvmpipe),
#     one slice per painted frame, background encoding on: frames per second (target >= 30);
#  3. memory of a simulated 2-hour editing session (2400 edits: masks, strokes, propagations,
#     undo/redo bursts on a 512x512x300 volume): the heap stays bounded by volume + labels + history limit;
#  4. click→paint in the real window: xdotool clicks on the CT (Esc between clicks, the slice already
#     encoded), each timed from just before xdotool sends the X event to the frame that shows the mask
#     (the app's state file gives that frame's wall-clock time): p50/p95 next to the decoder's time
#     (budget 30 ms p95, embedding cached; 100 ms is what users feel as direct manipulation).
# MEDSA_BENCH_GUI_ONLY=click runs only 4. Results: .cache/bench/gui.json (gui-click.json for 4).
# Exit status non-zero when the render budget or the memory bound fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$PWD/.cache/bench; mkdir -p "$OUT"
[ -x bin/medsa ] || go build -o bin/medsa .
export LANG=${LANG:-C.UTF-8}
ONLY=${MEDSA_BENCH_GUI_ONLY:-}

# click_paint MODEL CT: section 4, on the Xvfb already running.
click_paint() {
  local model=$1 ct=$2 n=${MEDSA_BENCH_CLICKS:-20} w state wid cx cy
  w=$(mktemp -d); state=$w/state.json
  MEDSA_STATE_FILE=$state MEDSA_MODEL_DIR=$model MEDSA_RECOVERY_DIR=$w/rec ./bin/medsa -no-recovery "$ct" >"$OUT/gui-click.log" 2>&1 &
  local apid=$!
  st() { /usr/bin/python3 -c 'import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception: sys.exit(0)
for k in sys.argv[2].split("."): d=d.get(k,{}) if isinstance(d,dict) else {}
print(d if d!={} else "")' "$state" "$1"; }
  for _ in $(seq 600); do
    wid=$(xdotool search --onlyvisible --name '^medsa' 2>/dev/null | head -1 || true)
    [ -n "$wid" ] && [ -n "$(st view.centre_x)" ] && break
    kill -0 $apid 2>/dev/null || { tail -20 "$OUT/gui-click.log"; return 1; }
    sleep 0.1
  done
  sleep 1
  cx=$(st view.centre_x | cut -d. -f1); cy=$(st view.centre_y | cut -d. -f1)
  : >"$w/clicks.tsv"
  for i in $(seq -2 "$n"); do # two warm-up clicks (the first encodes the slice)
    xdotool key --window "$wid" Escape; sleep 0.4
    local before t0 dx dy
    before=$(st count_painted); before=${before:-0}
    dx=$(( (i * 7) % 21 - 10 )); dy=$(( (i * 11) % 21 - 10 ))
    t0=$(date +%s%N)
    xdotool mousemove --window "$wid" $((cx + dx)) $((cy + dy)) click 1
    for _ in $(seq 200); do local c; c=$(st count_painted); [ -n "$c" ] && [ "$c" -gt "$before" ] && break; sleep 0.05; done
    [ "$i" -ge 1 ] && echo "$t0 $(st painted_at_ms) $(st painted) $(st mask.decode_ms) $(st mask.encode_ms)" >>"$w/clicks.tsv"
  done
  kill $apid 2>/dev/null || true; wait $apid 2>/dev/null || true
  /usr/bin/python3 - "$w/clicks.tsv" "$OUT/gui-click.json" "$model" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 5]
xev = sorted(float(r[1]) - int(r[0]) / 1e6 for r in rows)       # X event sent -> frame
inapp = sorted(float(r[2]) for r in rows)                        # pointer event in the app -> frame
dec = sorted(float(r[3]) for r in rows)
enc = [float(r[4]) for r in rows]
q = lambda x, p: x[min(len(x) - 1, int(round(p * (len(x) - 1))))] if x else float("nan")
res = {"clicks": len(rows), "model": sys.argv[3], "xevent_to_frame_ms": {"p50": q(xev, .5), "p95": q(xev, .95), "max": xev[-1] if xev else None},
       "pointer_to_frame_ms": {"p50": q(inapp, .5), "p95": q(inapp, .95)}, "decode_ms": {"p50": q(dec, .5), "p95": q(dec, .95)},
       "clicks_that_encoded": sum(1 for e in enc if e > 0)}
json.dump(res, open(sys.argv[2], "w"), indent=2)
print(f"click→paint over {len(rows)} clicks ({sys.argv[3]}): X event→frame p50 {res['xevent_to_frame_ms']['p50']:.0f} ms, p95 {res['xevent_to_frame_ms']['p95']:.0f} ms "
      f"(in-app pointer→frame p50 {res['pointer_to_frame_ms']['p50']:.0f}, p95 {res['pointer_to_frame_ms']['p95']:.0f}); decoder p50 {res['decode_ms']['p50']:.0f} ms, "
      f"p95 {res['decode_ms']['p95']:.0f} ms; {res['clicks_that_encoded']} clicks waited for an encoding")
PY
}

if [ "$ONLY" = click ]; then
  CT=${MEDSA_BENCH_CT:-.cache/testdata/derived/dicom/axial}
  MODEL=${MEDSA_MODEL_DIR:-${MEDSA_MODEL:-}}
  if [ -z "$MODEL" ]; then if [ -f assets/model/manifest.json ]; then MODEL=assets/model; else MODEL=testdata/tinymodel; fi; fi
  for n in $(seq 121 150); do [ -e /tmp/.X$n-lock ] || { DNUM=$n; break; }; done
  Xvfb :$DNUM -screen 0 1400x950x24 -nolisten tcp >/dev/null 2>&1 &
  XPID=$!
  trap 'kill $XPID 2>/dev/null || true' EXIT
  export DISPLAY=:$DNUM LIBGL_ALWAYS_SOFTWARE=1 FYNE_SCALE=1
  for _ in $(seq 100); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
  echo "== click→paint in the real window (Xvfb, software GL); load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  click_paint "$MODEL" "$CT"
  exit 0
fi

echo "== render (Go benchmarks, 512x512 slice)"
go test -run '^$' -bench 'RenderSlice512|RenderAndCompose800' -benchtime 200x ./viewer/render/ | tee "$OUT/gui-render.txt"
go test -run '^$' -bench 'Generate800' -benchtime 50x ./viewer/ 2>/dev/null | tee -a "$OUT/gui-render.txt"
ms() { awk -v n="$1" '$1 ~ n {print $3/1e6}' "$OUT/gui-render.txt" | head -1; }
R512=$(ms RenderSlice512); RC800=$(ms RenderAndCompose800); G800=$(ms Generate800)

PEER=$(/usr/bin/python3 - <<'EOF'
import time, numpy as np
n = 512
u, v = np.meshgrid(np.arange(n), np.arange(n))
img = ((u * 7 + v * 3) % 2000 - 1000).astype(np.float32)
lab = np.zeros((n, n), np.uint16)
lab[(u - 200) ** 2 + (v - 200) ** 2 < 80 ** 2] = 1
lab[(u - 300) ** 2 + (v - 300) ** 2 < 60 ** 2] = 2
prev = ((u - 260) ** 2 + (v - 240) ** 2 < 70 ** 2)
lut = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.float32)
alpha = np.array([0, 0.5, 0.5], np.float32)
def render():
    g = np.clip((img - (40 - 200)) / 400, 0, 1) * 255
    rgb = np.repeat(g[..., None], 3, axis=2)
    edge = np.zeros_like(lab, bool)
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]; edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]; edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    a = alpha[lab][..., None]
    a = np.where((edge & (lab > 0))[..., None], 1.0, a)
    rgb = rgb * (1 - a) + lut[lab] * a
    pe = prev & ~(np.roll(prev, 1, 0) & np.roll(prev, -1, 0) & np.roll(prev, 1, 1) & np.roll(prev, -1, 1))
    rgb[prev] = rgb[prev] * (1 - 0.35) + np.array([255, 230, 0]) * 0.35
    rgb[pe] = [255, 230, 0]
    return rgb.astype(np.uint8)
render()
ts = []
for _ in range(30):
    t = time.perf_counter(); render(); ts.append(time.perf_counter() - t)
print(f"{sorted(ts)[len(ts)//2]*1000:.3f}")
EOF
)
echo "render 512² slice + overlay + preview: medsa ${R512} ms (budget 8 ms), numpy peer ${PEER} ms, ratio $(awk -v a="$PEER" -v b="$R512" 'BEGIN{printf "%.1f", a/b}')x faster"
echo "render + sample onto an 800x800 view: ${RC800} ms; whole raster generator (slice cut, labels, glyphs): ${G800} ms"

echo "== scrolling in the real window (Xvfb, software GL)"
CT=${MEDSA_BENCH_CT:-.cache/testdata/derived/dicom/big}
[ -d "$CT" ] || bash scripts/testdata.d/dicom-series.sh
MODEL=${MEDSA_MODEL_DIR:-${MEDSA_MODEL:-}}
if [ -z "$MODEL" ]; then if [ -f assets/model/manifest.json ]; then MODEL=assets/model; else MODEL=testdata/tinymodel; fi; fi
for n in $(seq 121 150); do [ -e /tmp/.X$n-lock ] || { DNUM=$n; break; }; done
Xvfb :$DNUM -screen 0 1400x950x24 -nolisten tcp >/dev/null 2>&1 &
XPID=$!
trap 'kill $XPID 2>/dev/null || true' EXIT
export DISPLAY=:$DNUM LIBGL_ALWAYS_SOFTWARE=1 FYNE_SCALE=1
for _ in $(seq 100); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
glx=$(glxinfo -B 2>/dev/null | grep -m1 "renderer string" || echo "renderer: (glxinfo not installed)")
echo "$glx"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on this machine slows the frame rate)"
# Without a model: the display path alone. With the model: background encoding of neighbours too.
MEDSA_BENCH_SCROLL=$OUT/gui-scroll-nomodel.json MEDSA_MODEL_DIR=/nonexistent MEDSA_RECOVERY_DIR=$(mktemp -d) \
  timeout 600 ./bin/medsa -no-recovery "$CT" >"$OUT/gui-scroll.log" 2>&1 || { tail -20 "$OUT/gui-scroll.log"; exit 1; }
/usr/bin/python3 -c "import json; d=json.load(open('$OUT/gui-scroll-nomodel.json')); print(f\"no model: {d['fps']:.1f} fps (raster {d['render_ms_avg']:.1f} ms/frame, slowest {d['frame_ms_max']:.0f} ms)\")"
MEDSA_BENCH_SCROLL=$OUT/gui-scroll.json MEDSA_MODEL_DIR=$MODEL MEDSA_RECOVERY_DIR=$(mktemp -d) \
  timeout 600 ./bin/medsa -no-recovery "$CT" >"$OUT/gui-scroll.log" 2>&1 || { tail -20 "$OUT/gui-scroll.log"; exit 1; }
FPS=$(/usr/bin/python3 -c "import json; d=json.load(open('$OUT/gui-scroll.json')); print(f\"{d['fps']:.1f}\")")
/usr/bin/python3 -c "import json; d=json.load(open('$OUT/gui-scroll.json')); print(f\"with model $MODEL encoding in the background: scrolled {d['slices']} slices of a {d['study_size']} CT in a {d['view_w']:.0f}x{d['view_h']:.0f} view: {d['fps']:.1f} fps, our raster {d['render_ms_avg']:.1f} ms/frame, slowest frame {d['frame_ms_max']:.0f} ms, heap {d['heap_mib']:.0f} MiB\")"
echo "== click→paint in the real window"
click_paint "$MODEL" "${MEDSA_BENCH_CLICK_CT:-.cache/testdata/derived/dicom/axial}"
kill $XPID 2>/dev/null || true

echo "== memory of a simulated 2-hour editing session"
MEDSA_LONG_SESSION_EDITS=2400 MEDSA_LONG_SESSION_OUT=$OUT/gui-memory.json go test -count=1 -run TestLongSessionMemory -v ./interaction/ | grep -E "edits in|PASS|FAIL"
cat "$OUT/gui-memory.json"

/usr/bin/python3 - "$OUT" "$R512" "$PEER" "$RC800" "$G800" "$FPS" "$glx" <<'EOF'
import json, sys
out, r512, peer, rc, g, fps, glx = sys.argv[1:]
res = {"render_512_ms": float(r512), "render_512_numpy_peer_ms": float(peer), "render_compose_800_ms": float(rc),
       "raster_generator_800_ms": float(g), "scroll_fps": float(fps), "gl": glx.strip(),
       "scroll": json.load(open(f"{out}/gui-scroll.json")), "scroll_no_model": json.load(open(f"{out}/gui-scroll-nomodel.json")),
       "loadavg_after": open("/proc/loadavg").read().split()[:3], "memory": json.load(open(f"{out}/gui-memory.json")),
       "click_paint": json.load(open(f"{out}/gui-click.json"))}
json.dump(res, open(f"{out}/gui.json", "w"), indent=2)
ok = res["render_512_ms"] <= 8
print(f"gui bench: render {'OK' if ok else 'OVER BUDGET'}; scroll {fps} fps {'(>= 30)' if float(fps) >= 30 else '(below 30 on this machine now)'}; results in {out}/gui.json")
sys.exit(0 if ok else 1)
EOF
