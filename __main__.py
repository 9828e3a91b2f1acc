"""sdprov on Alibaba Cloud: read the stack config once, build the components, export outputs.

See docs/deploy-alibaba.md. The components live in provision/infra/.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from provision.infra.config import read_config
from provision.infra.stack import build_stack
from provision.infra.sync_code import build_code, vendor_dependencies
from provision.lock.lockfile import Lockfile

config = read_config()
lock = Lockfile.load(config.lock_path)
sync_code_b64, sync_code_sha256 = build_code(vendor_dependencies(Path("build/sync-deps")))
outputs = build_stack(config, lock, sync_code_b64=sync_code_b64)

pulumi.export("target", config.target.value)
pulumi.export("ui", config.ui.value)
pulumi.export("webui_url", outputs.webui_url)
pulumi.export("trigger_url", outputs.trigger_url)
pulumi.export("domain_cname_target", outputs.domain_cname_target)
pulumi.export("nas_file_system_id", outputs.nas_file_system_id)
pulumi.export("nas_mount_target", outputs.nas_mount_target)
pulumi.export("lock_digest", outputs.lock_digest)
pulumi.export("model_count", outputs.model_count)
pulumi.export("sync_task_id", outputs.sync_task_id)
pulumi.export("sync_code_sha256", sync_code_sha256)
