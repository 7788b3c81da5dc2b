"""Shared pytest fixtures.

``test_models_dir`` holds small networks in every format plus their reference outputs. In the full
environment it is built once per session by ``tests/fixtures/build_models.py`` (needs torch); in the
lean runtime environment (numpy<2, tflite-runtime, no torch) the Makefile builds it beforehand with
the full environment and points ``EDGESDK_TEST_MODELS`` at it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="session")
def test_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("EDGESDK_TEST_MODELS")
    if prebuilt:
        path = Path(prebuilt)
        if not (path / "manifest.json").is_file():
            pytest.fail(f"EDGESDK_TEST_MODELS={prebuilt} has no manifest.json; build it with "
                        f"`python -m tests.fixtures.build_models --out {prebuilt}`")
        return path
    if not has_module("torch"):
        pytest.skip("torch is not installed and EDGESDK_TEST_MODELS is not set")
    from tests.fixtures.build_models import build_all

    out = tmp_path_factory.mktemp("test_models")
    build_all(out)
    return out


@pytest.fixture(scope="session")
def foreign_models_dir(test_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models shaped like Ultralytics / TF OD API exports (see tests/fixtures/foreign_models.py)."""
    if (test_models_dir / "foreign_expected.json").is_file():
        return test_models_dir
    if not has_module("onnx"):
        pytest.skip("foreign test models are not prebuilt and onnx is not installed")
    from tests.fixtures.foreign_models import build_foreign

    out = tmp_path_factory.mktemp("foreign_models")
    build_foreign(out)
    return out
