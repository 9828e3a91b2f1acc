"""The symbolic reader: shapes out of torch pickles, nothing imported, nothing called."""

from __future__ import annotations

import pickle
import sys
import zipfile
from pathlib import Path

import pytest

from provision.errors import InspectionError
from provision.inspection import inspect_file, pickles
from provision.inspection.pickles import read_pickle_file
from tests.fixtures.torchpickle import (
    Call,
    OrderedDict,
    Parameter,
    Tensor,
    dumps,
    write_malicious_pickle,
    write_torch_legacy,
    write_torch_zip,
)


def test_torch_zip_shapes_and_dtypes(tmp_path: Path) -> None:
    state = OrderedDict({"a.weight": Tensor((320, 768)), "b": Tensor((4,), "F32"),
                         "c": Parameter(Tensor((2, 3), "BF16"))})  # fmt: skip
    contents = read_pickle_file(write_torch_zip(tmp_path / "m.ckpt", {"state_dict": state}))
    assert contents.layout == "torch-zip"
    assert {k: (v.dtype, v.shape) for k, v in contents.tensors.items()} == {
        "state_dict.a.weight": ("F16", (320, 768)),
        "state_dict.b": ("F32", (4,)),
        "state_dict.c": ("BF16", (2, 3)),
    }


def test_legacy_format(tmp_path: Path) -> None:
    path = write_torch_legacy(tmp_path / "m.pt", {"w": Tensor((3, 5)), "step": 7})
    contents = read_pickle_file(path)
    assert contents.layout == "torch-legacy"
    assert contents.tensors["w"].shape == (3, 5)
    assert contents.scalars == {"step": "7"}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_pickles_of_every_protocol(tmp_path: Path, protocol: int) -> None:
    # The stdlib pickler uses memo, framing and opcodes our torch writer does not.
    shared = {"k": "v"}
    obj = {"name": "x", "nested": {"a": [1, 2.5, None, True]}, "s1": shared, "s2": shared,
           7: ("t", b"bytes"), "big": 2**70}  # fmt: skip
    path = tmp_path / "p.bin"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    contents = read_pickle_file(path)
    assert contents.layout == "plain"
    assert contents.scalars == {"name": "x", "big": str(2**70)}
    assert contents.tensors == {}


CALLS: list[object] = []


def _record(value: object) -> None:
    CALLS.append(value)


class _Marker:
    """Unpickling this calls `_record`: it would show if the reader ever called anything."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_record, ("called",))


def test_nothing_named_in_a_pickle_is_imported_or_called(tmp_path: Path) -> None:
    marker = tmp_path / "marker.pt"
    marker.write_bytes(pickle.dumps({"m": _Marker()}, protocol=4))
    evil = write_torch_zip(
        tmp_path / "evil.pt",
        {"evil": Call("os", "system", ("exit 3",)), "mod": Call("no_such_module_xyz", "f", ())},
    )
    before = set(sys.modules)
    assert read_pickle_file(marker).tensors == {}
    assert read_pickle_file(evil).tensors == {}
    assert CALLS == []
    assert set(sys.modules) - before == set()


def test_malicious_pickle_reads_as_inert_data(tmp_path: Path) -> None:
    report = inspect_file(write_malicious_pickle(tmp_path / "evil.ckpt"))
    assert report.format == "pickle"  # the reader survived; safety is scan_pickle's job


def test_truncated_pickle_is_an_inspection_error(tmp_path: Path) -> None:
    path = tmp_path / "t.pt"
    path.write_bytes(dumps({"w": Tensor((2, 2))})[:-10])
    with pytest.raises(InspectionError, match="corrupt or unsupported pickle"):
        inspect_file(path)


def test_oversized_data_pkl_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_torch_zip(tmp_path / "m.ckpt", {f"k{i}": Tensor((1,)) for i in range(50)})
    monkeypatch.setattr(pickles, "MAX_PICKLE_BYTES", 100)
    with pytest.raises(InspectionError, match="more than any model"):
        inspect_file(path)


def test_oversized_legacy_stream_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_torch_legacy(tmp_path / "m.pt", {f"k{i}": Tensor((1,)) for i in range(50)})
    monkeypatch.setattr(pickles, "MAX_PICKLE_BYTES", 100)
    with pytest.raises(InspectionError, match="longer than"):
        inspect_file(path)


def test_a_zip_without_data_pkl_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "bundle.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    report = inspect_file(path)
    assert (report.kind, report.format) == ("unknown", "pickle")
    assert "no tensors in the file" in report.evidence


def test_self_referencing_pickle_terminates(tmp_path: Path) -> None:
    loop: list[object] = []
    loop.append(loop)
    path = tmp_path / "loop.bin"
    path.write_bytes(pickle.dumps({"loop": loop, "w": 1}, protocol=4))
    assert read_pickle_file(path).scalars == {"w": "1"}
