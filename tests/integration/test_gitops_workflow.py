"""The GitHub Actions workflow in docs/examples, checked: its structure (lock check and plan
comment on PRs; preview then up per environment, prod after dev, on merge) and its sdprov
steps run here, with bash as Actions runs them, in a real git repository whose pull-request
branch changes the models, against the loopback Civitai and Hugging Face servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.fakes import CivitaiServer, HfServer
from tests.integration.catalog import MANIFEST, build
from tests.integration.conftest import HF_TOKEN, TOKEN, Cli

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "docs" / "examples" / "models-workflow.yml"
EXPRESSIONS = {
    "github.base_ref": "main",
    "github.token": "gh-token",
    "github.event.pull_request.number": "7",
    "secrets.CIVITAI_TOKEN": TOKEN,
    "secrets.HF_TOKEN": HF_TOKEN,
}


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())  # YAML 1.2: `on` is a key
    return data


def _expand(text: str) -> str:
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: EXPRESSIONS.get(m[1], ""), text)


def _run_step(
    step: dict[str, Any], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    step_env = {**env, **{k: _expand(str(v)) for k, v in (step.get("env") or {}).items()}}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _expand(step["run"])],
        cwd=cwd, env=step_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_workflow_shape() -> None:
    flow = _workflow()
    assert set(flow["on"]) == {"pull_request", "push"}
    assert flow["on"]["push"]["branches"] == ["main"]
    jobs = flow["jobs"]
    runs = [s.get("run", "") for s in jobs["plan"]["steps"]]
    assert any("sdprov lock --all --check" in r for r in runs)
    assert any("--format markdown" in r for r in runs) and any("gh pr comment" in r for r in runs)
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert jobs["deploy-prod"]["needs"] == "deploy-dev"
    for stack in ("dev", "prod"):
        job = jobs[f"deploy-{stack}"]
        assert job["environment"] == stack
        pulumi = [s["with"] for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/")]
        assert pulumi == [
            {"command": "preview", "stack-name": stack},
            {"command": "up", "stack-name": stack},
        ]
        assert (REPO / "stacks" / f"Pulumi.{stack}.yaml").exists()  # the stacks it deploys exist
    assert "${{" not in "".join(runs)  # expressions reach scripts through env, never inlined


def test_workflow_sdprov_steps_run_on_a_pull_request(
    cli: Cli, civitai: CivitaiServer, hf: HfServer, tmp_path: Path
) -> None:
    build(tmp_path, civitai, hf)
    repo = tmp_path
    (repo / "manifests" / "models.yaml").write_text(MANIFEST)
    cli.run("lock")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", "manifests")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "models")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    _git(repo, "checkout", "-qb", "bump-lora")
    (repo / "manifests" / "models.yaml").write_text(MANIFEST.replace("135000", "135867"))

    env = {**cli.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{cli.env['PATH']}",
           "RUNNER_TEMP": str(tmp_path / "runner"), "GITHUB_PATH": str(tmp_path / "gh_path")}  # fmt: skip
    (tmp_path / "runner").mkdir()
    steps = {s.get("name"): s for s in _workflow()["jobs"]["plan"]["steps"]}

    # The manifest changed without its lock: the check step fails the PR.
    stale = _run_step(steps["Lockfiles are fresh"], repo, env)
    assert stale.returncode == 1 and "is stale" in stale.stderr

    cli.run("lock")
    fresh = _run_step(steps["Lockfiles are fresh"], repo, env)
    assert fresh.returncode == 0, fresh.stderr
    plan = _run_step(steps["Plan against the base branch"], repo, env)
    assert plan.returncode == 0, plan.stderr
    body = (repo / "plan.md").read_text()
    assert body.startswith("### sdprov plan: `manifests/models.lock.json`")
    assert "**1 changed; " in body
    assert (
        "| changed | `add-detail-xl` | lora | sdxl | v1 (122359@135000) → v2 (122359@135867) |"
        in body
    )
    assert TOKEN not in body and HF_TOKEN not in body
    assert "--body-file plan.md" in steps["Post the plan on the pull request"]["run"]

    # A lockfile new in the PR (no base on main) plans as all-added instead of failing.
    (repo / "manifests" / "extra.yaml").write_text(
        "vaes:\n  - hf: madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors\n"
    )
    cli.run("lock", "manifests/extra.yaml")
    plan = _run_step(steps["Plan against the base branch"], repo, env)
    assert plan.returncode == 0, plan.stderr
    assert "**1 added; " in (repo / "plan.md").read_text()

    deploy = {s.get("name"): s for s in _workflow()["jobs"]["deploy-prod"]["steps"]}
    assert _run_step(deploy["Lockfiles are fresh"], repo, env).returncode == 0
