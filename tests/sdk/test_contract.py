from __future__ import annotations

import copy
import json

import pytest

from sdk.contract import METADATA_KEY, SCHEMA_VERSION, InputContract, ModelContract, sidecar_paths
from sdk.errors import ModelContractError

BASE = {
    "schema_version": 1, "task": "detect", "labels": ["a", "b"],
    "input": {"shape": [1, 3, 320, 320], "layout": "NCHW"},
    "decoder": {"type": "yolo"},
}


def variant(**changes):
    d = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        target = d
        keys = dotted.split("__")
        for k in keys[:-1]:
            target = target[k]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return d


def test_minimal_contract_defaults():
    c = ModelContract.from_dict(BASE)
    assert c.task == "detect" and c.labels == ("a", "b")
    assert c.input.size_hw == (320, 320) and c.input.color == "RGB" and c.input.resize == "letterbox"
    assert c.input.scale == pytest.approx(1 / 255) and c.input.mean == (0.0, 0.0, 0.0)
    assert METADATA_KEY == "edgesdk_contract" and SCHEMA_VERSION == 1


def test_round_trip_json(tmp_path):
    c = ModelContract.from_dict(variant(input__quantization={"scale": 0.0039, "zero_point": -128},
                                        input__dtype="int8", precision="int8", postprocess={"conf_threshold": 0.3}))
    again = ModelContract.from_json(c.to_json())
    assert again == c
    p = c.save(tmp_path / "m.onnx.json")
    assert ModelContract.from_file(p) == c
    assert again.input.quantization == (0.0039, -128)


def test_labels_as_mapping_and_nhwc():
    c = ModelContract.from_dict(variant(labels={"0": "x", "2": "z"}, input__shape=[1, 224, 224, 3], input__layout="NHWC"))
    assert c.labels == ("x", "1", "z") and c.input.size_hw == (224, 224) and c.input.channels == 3


@pytest.mark.parametrize("changes, message", [
    (dict(task="segment"), r"contract.task: expected one of detect, classify, embed, got 'segment'"),
    (dict(task=KeyError), r"contract.task: required field is missing"),
    (dict(schema_version=99), r"up to version 1, got 99; upgrade edgesdk"),
    (dict(schema_version="1"), r"contract.schema_version: expected an integer"),
    (dict(input__layuot="NCHW"), r"unknown key 'layuot' \(did you mean 'layout'\?\)"),
    (dict(input__layout="NCWH"), r"contract.input.layout: expected one of NCHW, NHWC, got 'NCWH' \(did you mean 'NCHW'\?\)"),
    (dict(input__shape=[1, 3, 320]), r"contract.input.shape: expected a list of 4 dimensions"),
    (dict(input__shape=[1, 320, 320, 3]), r"expected 3 channels in layout NCHW"),
    (dict(input__shape=KeyError), r"contract.input.shape: required field is missing"),
    (dict(input__std=[1, 0, 1]), r"contract.input.std\[1\]: expected a number > 0"),
    (dict(input__pad_value=300), r"contract.input.pad_value: expected an integer in 0..255"),
    (dict(input__quantization={"scale": 0.1}), r"contract.input.quantization: expected \{scale, zero_point\}"),
    (dict(decoder={"type": "yolov9"}), r"contract.decoder.type: expected one of .*got 'yolov9'"),
    (dict(decoder={"type": "classifier"}), r"decoder 'classifier' produces task 'classify', but contract.task is 'detect'"),
    (dict(decoder=None), r"contract.decoder: expected an object with a 'type'"),
    (dict(labels=[1, 2]), r"contract.labels: expected a list of strings"),
    (dict(postprocess={"conf": 0.3}), r"unknown key 'conf'"),
    (dict(postprocess={"conf_threshold": 2}), r"conf_threshold: expected a number in \[0, 1\]"),
    (dict(postprocess={"max_det": 0}), r"max_det: expected a positive integer"),
    (dict(precision="int4"), r"contract.precision: expected one of"),
    (dict(unknown_field=1), r"unknown key 'unknown_field'"),
])
def test_invalid_fields_named(changes, message):
    with pytest.raises(ModelContractError, match=message):
        ModelContract.from_dict(variant(**changes))


def test_bad_json_and_missing_file(tmp_path):
    with pytest.raises(ModelContractError, match="unparseable"):
        ModelContract.from_json("{not json", source="x.json")
    with pytest.raises(ModelContractError, match="x.json: contract.task"):
        ModelContract.from_json(json.dumps(variant(task="nope")), source="x.json")
    with pytest.raises(ModelContractError, match="cannot read contract file"):
        ModelContract.from_file(tmp_path / "missing.json")
    with pytest.raises(ModelContractError, match="expected a JSON object"):
        ModelContract.from_json("[1, 2]")


def test_dynamic_size_is_reported():
    c = InputContract.from_dict({"shape": [1, 3, -1, None]})
    with pytest.raises(ModelContractError, match="static height and width"):
        c.size_hw


def test_with_updates_revalidates():
    c = ModelContract.from_dict(BASE)
    assert c.with_updates(labels=["q"]).labels == ("q",)
    with pytest.raises(ModelContractError):
        c.with_updates(task="bad")


def test_sidecar_paths(tmp_path):
    assert [p.name for p in sidecar_paths(tmp_path / "m.onnx")] == ["m.onnx.json", "m.json"]
