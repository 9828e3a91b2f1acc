"""`./dev demo`: a real `sdprov lock` + `sdprov sync` into ./sd/models, offline.

Starts the loopback Civitai (API + signed storage) and Hugging Face fakes that the tests use,
serving small but valid model files, points sdprov at them with SDPROV_CIVITAI_URL and
HF_ENDPOINT, and runs the same commands a user runs against civitai.com.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import build

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models-root", type=Path, default=Path("sd/models"))
    parser.add_argument("--manifest", type=Path, default=Path("manifests/demo.yaml"))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sdprov-demo-") as tmp,
        CivitaiServer() as civitai,
        HfServer() as hf,
    ):
        build(Path(tmp), civitai, hf)
        env = dict(os.environ, SDPROV_CIVITAI_URL=civitai.api_url, HF_ENDPOINT=hf.endpoint)
        for extra in ("CIVITAI_TOKEN", "HF_TOKEN"):
            env.pop(extra, None)
        sdprov = [sys.executable, "-m", "provision.cli"]
        manifest = str(args.manifest)
        root = str(args.models_root)
        print(f"demo: Civitai stand-in at {civitai.api_url}, Hugging Face at {hf.endpoint}")
        for step in (
            ["lock", manifest],
            ["sync", manifest, "--models-root", root],
            ["sync", manifest, "--models-root", root],  # nothing to do the second time
            ["status", manifest, "--models-root", root, "--check"],
        ):
            print(f"\n$ sdprov {' '.join(step)}", flush=True)
            code = subprocess.run([*sdprov, *step], env=env, cwd=ROOT).returncode
            if code:
                return code
    print(f"\ndemo: done; point WebUI at it with: sdprov webui args --models-root {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
