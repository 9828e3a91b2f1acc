"""Pickle safety: WebUI's own allow-list, applied to what picklescan finds."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest

from provision.inspection import SAFE_GLOBALS, scan_pickle
from tests.fixtures.modelfiles import make_checkpoint, make_embedding, make_hypernetwork
from tests.fixtures.torchpickle import Call, Tensor, write_malicious_pickle, write_torch_zip


@pytest.mark.parametrize("zipped", [True, False])
def test_os_system_is_refused(tmp_path: Path, zipped: bool) -> None:
    verdict = scan_pickle(write_malicious_pickle(tmp_path / "evil.ckpt", zipped=zipped))
    assert not verdict.safe
    assert "os.system" in verdict.imports
    assert "imports os.system (outside WebUI's safe set)" in verdict.message


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_stdlib_pickled_exploit_is_refused(tmp_path: Path, protocol: int) -> None:
    # pickle.dumps never runs __reduce__'s callable; it only names it (posix.system).
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": {}, "x": _Exploit()}, protocol=protocol))
    verdict = scan_pickle(path)
    assert not verdict.safe
    assert any(i.endswith(".system") for i in verdict.imports)


def test_a_global_picklescan_only_calls_suspicious_is_still_refused(tmp_path: Path) -> None:
    # torch.nn.Linear is not on picklescan's deny-list, but WebUI's unpickler refuses it.
    path = write_torch_zip(
        tmp_path / "m.pt", {"layer": Call("torch.nn.modules.linear", "Linear", (4, 4))}
    )
    verdict = scan_pickle(path)
    assert not verdict.safe
    assert "torch.nn.modules.linear.Linear" in verdict.message


def test_unexpected_zip_members_are_refused(tmp_path: Path) -> None:
    path = write_torch_zip(tmp_path / "m.ckpt", {"w": Tensor((1,))})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("archive/extra/payload.py", "print('hi')")
    verdict = scan_pickle(path)
    assert not verdict.safe
    assert "archive/extra/payload.py" in verdict.message


@pytest.mark.parametrize(
    "make",
    [
        lambda p: make_checkpoint(p / "m.ckpt", "sd1"),
        lambda p: make_embedding(p / "e.pt", "sd1"),  # ParameterDict + _rebuild_parameter
        lambda p: make_hypernetwork(p / "h.pt", "sd2", legacy=True),
    ],
)
def test_real_model_layouts_are_safe(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    verdict = scan_pickle(path)
    assert verdict.safe, verdict.message
    assert "torch._utils._rebuild_tensor_v2" in verdict.imports
    assert all(tuple(i.rsplit(".", 1)) in SAFE_GLOBALS for i in verdict.imports)


def test_the_safe_set_is_webui_s() -> None:
    # modules/safe.py RestrictedUnpickler.find_class, nothing more.
    assert len(SAFE_GLOBALS) == 21
    assert ("torch._utils", "_rebuild_tensor_v2") in SAFE_GLOBALS
    assert ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint") in SAFE_GLOBALS
    assert ("__builtin__", "set") in SAFE_GLOBALS
    assert ("builtins", "set") not in SAFE_GLOBALS
    assert not any(
        module in ("os", "posix", "builtins", "subprocess") for module, _ in SAFE_GLOBALS
    )


def test_to_json(tmp_path: Path) -> None:
    data = scan_pickle(write_malicious_pickle(tmp_path / "e.pt")).to_json()
    assert data["safe"] is False
    assert "os.system" in data["imports"]  # type: ignore[operator]
