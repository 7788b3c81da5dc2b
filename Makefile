# EdgeSDK — set-up, tests and demo. Everything a fresh machine needs is installed from here.
#
#   make test       full environment (.venv: torch, converters, all runtimes) + lean runtime environment
#                   (.venv-lean: numpy<2, tflite-runtime, onnxruntime, no torch), as on a Raspberry Pi
#   make demo       lean runtime environment (.venv-demo: numpy, OpenCV, ONNX Runtime, LiteRT, no torch), then the
#                   shipped INT8 YOLO-nano on synthetic://shapes (or SOURCE=...): annotated video, profile report,
#                   per-stage latency table and live mAP
#   make bench      side-by-side benchmarks (benchmarks/*.py; installs ultralytics --no-deps into .venv for
#                   benchmarks/vs_ultralytics.py)

PYTHON      ?= python3
VENV        := .venv
LEAN        := .venv-lean
PY          := $(VENV)/bin/python
LEAN_PY     := $(LEAN)/bin/python
DEMO        := .venv-demo
DEMO_PY     := $(DEMO)/bin/python
SOURCE      ?= synthetic://shapes
FRAMES      ?= 300
DEMO_OUT    ?= build/demo
TEST_MODELS := build/test-models
PYTEST_ARGS ?=
# Debian packages the tests need (real capture tests: GStreamer, RTSP server, ffmpeg).
APT_PACKAGES ?= ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
                gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 \
                python3-gi gir1.2-gstreamer-1.0

.PHONY: test test-full test-lean setup setup-lean setup-demo demo apt-deps test-models bench clean

test: test-full test-lean

setup: $(VENV)/.installed
setup-lean: $(LEAN)/.installed

apt-deps:
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else echo "missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; fi; \
	  fi; \
	fi

# torch/torchvision are pinned to the versions this project is tested with (a CUDA build that runs on CPU).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[all,dev]'
	touch $@

# A Raspberry Pi user's environment: numpy<2 and the classic tflite-runtime wheel, no torch, no OpenVINO.
$(LEAN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LEAN)
	$(LEAN_PY) -m pip install -q --upgrade pip
	$(LEAN_PY) -m pip install -q 'opencv-python-headless<4.12' -e '.[onnx,tflite-legacy,dev]'
	touch $@

# The demo's environment: what a device needs to run the shipped models (no torch, no OpenVINO).
$(DEMO)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO)
	$(DEMO_PY) -m pip install -q --upgrade pip
	$(DEMO_PY) -m pip install -q -e '.[onnx,tflite,plots]'
	touch $@

setup-demo: $(DEMO)/.installed

demo: $(DEMO)/.installed
	$(DEMO)/bin/edgesdk demo --source '$(SOURCE)' --frames $(FRAMES) --out $(DEMO_OUT)

$(TEST_MODELS)/manifest.json: $(VENV)/.installed tests/fixtures/build_models.py
	$(PY) -m tests.fixtures.build_models --out $(TEST_MODELS)

test-models: $(TEST_MODELS)/manifest.json

test-full: apt-deps $(VENV)/.installed $(TEST_MODELS)/manifest.json
	EDGESDK_TEST_MODELS=$(TEST_MODELS) $(PY) -m pytest $(PYTEST_ARGS)

# The runtime's own tests (tests/sdk) with numpy<2 + tflite-runtime; torch-only comparisons skip there.
test-lean: $(LEAN)/.installed $(TEST_MODELS)/manifest.json
	@$(LEAN_PY) -c "import numpy, sys; assert numpy.__version__ < '2', numpy.__version__; \
	  assert 'torch' not in sys.modules; import tflite_runtime; print('lean env: numpy', numpy.__version__)"
	EDGESDK_TEST_MODELS=$(TEST_MODELS) $(LEAN_PY) -m pytest tests/sdk $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) benchmarks/nms.py
	$(PY) benchmarks/prepost.py
	$(PY) benchmarks/capture.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/formats.py
	$(PY) benchmarks/yolo_p2.py
	$(PY) benchmarks/train_throughput.py
	$(PY) -m pip install --quiet --no-deps ultralytics==8.4.190
	$(PY) benchmarks/vs_ultralytics.py --no-spin

clean:
	rm -rf build .pytest_cache
