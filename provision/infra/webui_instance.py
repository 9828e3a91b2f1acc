"""Stable Diffusion WebUI on a GPU ECS instance, with the models NAS mounted by cloud-init.

cloud-init installs the NFS client, mounts the NAS at /mnt/auto with Alibaba's documented NFSv4.0
options (hard, timeo=600, retrans=2, noresvport; an fstab entry with `_netdev` so it comes back
after a reboot), checks out A1111 at a pinned tag and runs it as the `sd-webui` systemd service
with the same flags as the FC function (`provision.webui.launch.webui_args`). The WebUI login
is in `/etc/sdprov/webui.env` (mode 600); the user data that carries it is a secret in state.

Reachability: only the VPC, plus `allowed_cidr` on port 7860 when configured (then the instance
gets a public IP). Nothing is open to 0.0.0.0/0 unless someone writes exactly that.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import (
    DATA_DIR,
    MODELS_MOUNT_DIR,
    MODELS_ROOT,
    NAS_EXPORT_PATH,
    WEBUI_PORT,
)
from provision.webui.launch import AUTH_ENV, render_shell, webui_args

# Alibaba's documented NFSv4.0 mount options for General-purpose NAS (reference/alicloud.md §4).
NFS_OPTIONS: Final = (
    "vers=4,minorversion=0,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
)
WEBUI_DIR: Final = "/opt/stable-diffusion-webui"
WEBUI_REPO: Final = "https://github.com/AUTOMATIC1111/stable-diffusion-webui"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebuiInstanceArgs:
    name_prefix: str
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    nas_mount_target_domain: pulumi.Input[str]
    webui_user: str
    webui_password: pulumi.Input[str]
    webui_version: str = "v1.6.0"
    allowed_cidr: str | None = None
    system_disk_gb: int = 100


def cloud_init(*, nas_domain: str, webui_version: str, user: str, password: str) -> str:
    """The instance's user data (cloud-config). Contains the WebUI password: keep it secret."""
    flags = webui_args(PurePosixPath(MODELS_ROOT), PurePosixPath(DATA_DIR), port=WEBUI_PORT,
                       auth=True)  # fmt: skip
    # The flags name "$SDPROV_WEBUI_AUTH"; bash expands it from the 0600 environment file, so
    # the password is in neither the unit nor the start script.
    command = f"exec /bin/bash {WEBUI_DIR}/webui.sh -f {render_shell(flags)}"
    fstab = f"{nas_domain}:{NAS_EXPORT_PATH} {MODELS_MOUNT_DIR} nfs {NFS_OPTIONS},_netdev 0 0"
    return f"""#cloud-config
packages: [nfs-common, git, python3-venv, python3-pip, libgl1, libglib2.0-0, google-perftools]
write_files:
  - path: /etc/sdprov/webui.env
    permissions: "0600"
    content: |
      {AUTH_ENV}={shlex.quote(f"{user}:{password}")}
      SD_WEBUI_CACHE_FILE={DATA_DIR}/cache.json
  - path: /etc/sdprov/start-webui.sh
    permissions: "0755"
    content: |
      #!/bin/bash
      {command}
  - path: /etc/systemd/system/sd-webui.service
    permissions: "0644"
    content: |
      [Unit]
      Description=Stable Diffusion WebUI (sdprov)
      After=network-online.target remote-fs.target
      Wants=network-online.target
      RequiresMountsFor={MODELS_MOUNT_DIR}
      [Service]
      EnvironmentFile=/etc/sdprov/webui.env
      WorkingDirectory={WEBUI_DIR}
      ExecStart=/etc/sdprov/start-webui.sh
      Restart=on-failure
      RestartSec=10
      [Install]
      WantedBy=multi-user.target
runcmd:
  - mkdir -p {MODELS_MOUNT_DIR} /mnt/nas-root
  - mount -t nfs -o {NFS_OPTIONS} {nas_domain}:/ /mnt/nas-root
  - mkdir -p /mnt/nas-root{NAS_EXPORT_PATH}
  - umount /mnt/nas-root
  - echo '{fstab}' >> /etc/fstab
  - mount {MODELS_MOUNT_DIR}
  - mkdir -p {MODELS_ROOT}
  - git clone --depth 1 --branch {shlex.quote(webui_version)} {WEBUI_REPO} {WEBUI_DIR}
  - systemctl daemon-reload
  - systemctl enable --now sd-webui
"""


class WebuiInstance(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    url: pulumi.Output[str]
    private_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebuiInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:WebuiInstance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        public = args.allowed_cidr is not None
        if public:
            alicloud.ecs.SecurityGroupRule(
                f"{name}-webui-ingress",
                alicloud.ecs.SecurityGroupRuleArgs(
                    type="ingress",
                    ip_protocol="tcp",
                    port_range=f"{WEBUI_PORT}/{WEBUI_PORT}",
                    cidr_ip=args.allowed_cidr,
                    nic_type="intranet",  # the only value for VPC security groups
                    policy="accept",
                    priority=1,
                    security_group_id=args.security_group_id,
                    description="WebUI from the configured CIDR only (sdprov:allowedCidr)",
                ),
                opts=child,
            )
        user_data: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(args.nas_mount_target_domain, args.webui_password).apply(
                lambda v: cloud_init(
                    nas_domain=str(v[0]),
                    webui_version=args.webui_version,
                    user=args.webui_user,
                    password=str(v[1]),
                )
            )
        )
        instance = alicloud.ecs.Instance(
            f"{name}-instance",
            alicloud.ecs.InstanceArgs(
                instance_name=f"{args.name_prefix}-webui",
                host_name=f"{args.name_prefix}-webui",
                instance_type=args.instance_type,
                image_id=args.image_id,
                vswitch_id=args.vswitch_id,
                security_groups=[args.security_group_id],
                system_disk_category="cloud_essd",
                system_disk_size=args.system_disk_gb,
                instance_charge_type="PostPaid",
                internet_charge_type="PayByTraffic",
                internet_max_bandwidth_out=10 if public else 0,  # >0 allocates a public IP
                user_data=user_data,
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["userData"]),
        )
        self.instance_id = instance.id
        self.private_ip = instance.private_ip
        self.private_url = instance.private_ip.apply(lambda ip: f"http://{ip}:{WEBUI_PORT}")
        self.url = (
            instance.public_ip.apply(lambda ip: f"http://{ip}:{WEBUI_PORT}")
            if public
            else self.private_url
        )
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "private_ip": self.private_ip,
                "url": self.url,
                "private_url": self.private_url,
            }
        )
