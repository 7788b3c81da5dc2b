from __future__ import annotations

import pytest

from sdk.contract import ModelContract
from sdk.foreign import parse_int_list, parse_names, read_ultralytics_yaml, ultralytics_contract

ULTRA = {"description": "Ultralytics YOLOv8n model trained on coco.yaml", "author": "Ultralytics",
         "version": "8.3.0", "stride": "32", "task": "detect", "batch": "1", "imgsz": "[640, 640]",
         "names": "{0: 'person', 1: \"bi'cycle\", 3: 'motor\\'bike'}"}


def test_parse_names_without_eval():
    assert parse_names(ULTRA["names"]) == ["person", "bi'cycle", "2", "motor'bike"]
    assert parse_names("{}") == []
    for bad in ["[1, 2]", "{__import__('os')}", "not a dict"]:
        with pytest.raises(ValueError, match="dict literal"):
            parse_names(bad)


def test_parse_int_list():
    assert parse_int_list("[640, 480]") == [640, 480] and parse_int_list("320") == [320]
    with pytest.raises(ValueError):
        parse_int_list("[640, x]")


def test_ultralytics_contract_detect_and_end2end():
    c = ModelContract.from_dict(ultralytics_contract(ULTRA))
    assert c.decoder == {"type": "yolo", "version": "v8", "num_classes": 4}
    assert c.input.shape == (1, 3, 640, 640) and c.input.pad_value == 114 and c.input.color == "RGB"
    e2e = ultralytics_contract(ULTRA, output_shapes=[[1, 300, 6]])
    assert e2e["decoder"]["type"] == "yolo_end2end"
    nhwc = ModelContract.from_dict(ultralytics_contract(ULTRA, input_layout="NHWC"))
    assert nhwc.input.shape == (1, 640, 640, 3)


def test_not_ultralytics():
    assert ultralytics_contract({"producer": "pytorch"}) is None
    assert ultralytics_contract({**ULTRA, "task": "segment"}) is None


def test_metadata_yaml(tmp_path):
    p = tmp_path / "metadata.yaml"
    p.write_text("author: Ultralytics\nstride: 32\ntask: detect\nimgsz: [320, 320]\nnames:\n  0: person\n  1: car\n")
    meta = read_ultralytics_yaml(p)
    c = ModelContract.from_dict(ultralytics_contract(meta))
    assert c.labels == ("person", "car") and c.input.size_hw == (320, 320)
    assert read_ultralytics_yaml(tmp_path / "none.yaml") is None
    p.write_text("!!python/object/apply:os.system ['echo hi']\n")
    import yaml
    with pytest.raises(yaml.YAMLError):
        read_ultralytics_yaml(p)
