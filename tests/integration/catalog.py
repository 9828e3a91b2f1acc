"""A small Civitai/HF catalogue of real model files (valid headers, tiny tensors) for tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import CivitaiServer, FakeFile, FakeModel, FakeVersion, HfServer
from tests.fixtures.modelfiles import (
    make_checkpoint,
    make_embedding,
    make_hypernetwork,
    make_lora,
    make_vae,
)


@dataclass(frozen=True)
class Catalog:
    files: Path  # where the source files live

    def content(self, name: str) -> bytes:
        return (self.files / name).read_bytes()

    def sha(self, name: str) -> str:
        return hashlib.sha256(self.content(name)).hexdigest()


def build(tmp: Path, civitai: CivitaiServer, hf: HfServer) -> Catalog:
    src = tmp / "catalog"
    make_checkpoint(src / "juggernaut_v9.safetensors", "sdxl")
    make_lora(src / "detail_tweaker_xl.safetensors", "sdxl")
    make_lora(src / "detail_tweaker_xl_v2.safetensors", "sdxl", variant="LoCon")
    make_embedding(src / "negative_xl.safetensors", "sdxl")
    make_vae(src / "sdxl_vae.safetensors")
    make_hypernetwork(src / "anime_3.pt", "sd1")
    civitai.add(
        FakeModel(
            id=133005,
            name="Juggernaut XL",
            type="Checkpoint",
            versions=[
                FakeVersion(
                    id=288982,
                    name="v9",
                    base_model="SDXL 1.0",
                    files=[
                        FakeFile(
                            id=240840,
                            name="juggernautXL_v9.safetensors",
                            content=src / "juggernaut_v9.safetensors",
                            primary=True,
                        )
                    ],
                )
            ],
        )
    )
    civitai.add(
        FakeModel(
            id=122359,
            name="Detail Tweaker XL",
            type="LORA",
            versions=[
                FakeVersion(
                    id=135867,
                    name="v2",
                    base_model="Pony",
                    files=[
                        FakeFile(
                            id=150000,
                            name="add-detail-xl.safetensors",
                            content=src / "detail_tweaker_xl_v2.safetensors",
                            primary=True,
                        )
                    ],
                ),
                FakeVersion(
                    id=135000,
                    name="v1",
                    base_model="SDXL 1.0",
                    files=[
                        FakeFile(
                            id=149000,
                            name="add-detail-xl.safetensors",
                            content=src / "detail_tweaker_xl.safetensors",
                            primary=True,
                        )
                    ],
                ),
            ],
        )
    )
    civitai.add(
        FakeModel(
            id=7808,
            name="Negative XL",
            type="TextualInversion",
            versions=[
                FakeVersion(
                    id=9208,
                    name="v1",
                    base_model="SDXL 1.0",
                    trained_words=["negative_xl"],
                    files=[
                        FakeFile(
                            id=9300,
                            name="negative_xl.safetensors",
                            content=src / "negative_xl.safetensors",
                            primary=True,
                        )
                    ],
                )
            ],
        )
    )
    hf.add_file(
        "madebyollin/sdxl-vae-fp16-fix",
        "sdxl_vae.safetensors",
        src / "sdxl_vae.safetensors",
        commit="207b116dae70ace3637169f1ddd2434b91b3a8cd",  # fixed: the demo's lock outlives runs
    )
    return Catalog(files=src)


MANIFEST = """\
# Team models
checkpoints:
  - civitai: 133005@288982
    name: juggernaut_xl_v9
loras:
  - civitai: https://civitai.com/models/122359?modelVersionId=135000
embeddings:
  - civitai: urn:air:sdxl:embedding:civitai:7808@9208
vaes:
  - hf: madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors
"""
