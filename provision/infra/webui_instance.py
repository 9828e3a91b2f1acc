"""The same UI container as on FC, on a GPU ECS instance, with the models NAS mounted by cloud-init.

cloud-init installs the NVIDIA server driver from Ubuntu's archive (the image is a plain Ubuntu
22.04 system image found with `ecs.get_images`), Docker and NVIDIA's container toolkit, mounts
the NAS at /mnt/auto with Alibaba's documented NFSv4.0 options (an fstab entry with `_netdev`),
and runs the digest-pinned UI image as the `sdprov-ui` systemd unit with `--gpus all`. The login
is in `/etc/sdprov/ui.env` (mode 600); the user data that carries it is a secret in state.

Egress (pip, Docker Hub/ACR, Civitai for a local sync) by default through a public IP with no
inbound rule; `nat` puts an enhanced NAT gateway + EIP + SNAT entry in front of the vSwitch
instead; `none` leaves it to the team's network. Inbound: only the VPC, plus `allowed_cidr` on
7860 when configured.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.config import (
    MODELS_MOUNT_DIR,
    MODELS_ROOT,
    NAS_EXPORT_PATH,
    WEBUI_PORT,
    EcsEgress,
)
from provision.webui.launch import AUTH_ENV

# Alibaba's documented NFSv4.0 mount options for General-purpose NAS (reference/alicloud.md §4).
NFS_OPTIONS: Final = (
    "vers=4,minorversion=0,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
)
ECS_IMAGE_REGEX: Final = r"^ubuntu_22_04_x64_20G_alibase_.*\.vhd$"
NVIDIA_REPO: Final = "https://nvidia.github.io/libnvidia-container"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebuiInstanceArgs:
    name_prefix: str
    instance_type: str
    image_id: pulumi.Input[str]
    image: str  # the UI container image, digest-pinned
    vpc_id: pulumi.Input[str]
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    nas_mount_target_domain: pulumi.Input[str]
    webui_user: str
    webui_password: pulumi.Input[str]
    egress: EcsEgress = EcsEgress.PUBLIC_IP
    allowed_cidr: str | None = None
    system_disk_gb: int = 100
    # `docker login` for a private ACR repository (FC pulls with its service role; ECS cannot)
    registry_user: str | None = None
    registry_password: pulumi.Input[str] = ""


def _registry_login(image: str, registry: tuple[str, str] | None) -> tuple[str, str]:
    """(write_files entry, runcmd line) for `docker login` from a 0600 file, or two ""."""
    if registry is None:
        return "", ""
    host = image.split("/", 1)[0]
    login_file = f"""
  - path: /etc/sdprov/registry.pw
    permissions: "0600"
    content: {json.dumps(registry[1])}"""
    login_cmd = (
        f"\n  - docker login -u {shlex.quote(registry[0])} --password-stdin {host} "
        "< /etc/sdprov/registry.pw; rm -f /etc/sdprov/registry.pw"
    )
    return login_file, login_cmd


def cloud_init(
    *,
    nas_domain: str,
    image: str,
    user: str,
    password: str,
    registry: tuple[str, str] | None = None,
) -> str:
    """The instance's user data (cloud-config). Contains the UI password: keep it secret.

    `registry` is (user, password) for `docker login` to the image's registry, read from a 0600
    file on stdin and the file removed after: the password is never in a command line.
    """
    fstab = f"{nas_domain}:{NAS_EXPORT_PATH} {MODELS_MOUNT_DIR} nfs {NFS_OPTIONS},_netdev 0 0"
    run = (
        f"/usr/bin/docker run --rm --name sdprov-ui --gpus all -p {WEBUI_PORT}:{WEBUI_PORT} "
        f"-v {MODELS_MOUNT_DIR}:{MODELS_MOUNT_DIR} --env-file /etc/sdprov/ui.env "
        f"{shlex.quote(image)}"
    )
    login_file, login_cmd = _registry_login(image, registry)
    keyring = "/usr/share/keyrings/nvidia-container-toolkit.gpg"
    sign = f"sed 's#deb https://#deb [signed-by={keyring}] https://#'"
    sources = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
    return f"""#cloud-config
packages: [nfs-common, docker.io, curl, gpg, ubuntu-drivers-common]
write_files:
  - path: /etc/sdprov/ui.env
    permissions: "0600"
    content: |
      {AUTH_ENV}={user}:{password}{login_file}
  - path: /etc/systemd/system/sdprov-ui.service
    permissions: "0644"
    content: |
      [Unit]
      Description=Stable Diffusion UI container (sdprov)
      After=docker.service network-online.target remote-fs.target
      Requires=docker.service
      RequiresMountsFor={MODELS_MOUNT_DIR}
      [Service]
      ExecStartPre=-/usr/bin/docker rm -f sdprov-ui
      ExecStart={run}
      Restart=always
      RestartSec=10
      [Install]
      WantedBy=multi-user.target
runcmd:
  - ubuntu-drivers install --gpgpu
  - curl -fsSL {NVIDIA_REPO}/gpgkey | gpg --dearmor -o {keyring}
  - curl -fsSL {NVIDIA_REPO}/stable/deb/nvidia-container-toolkit.list | {sign} > {sources}
  - apt-get update && apt-get install -y nvidia-container-toolkit
  - nvidia-ctk runtime configure --runtime=docker && systemctl restart docker{login_cmd}
  - mkdir -p {MODELS_MOUNT_DIR} /mnt/nas-root
  - mount -t nfs -o {NFS_OPTIONS} {nas_domain}:/ /mnt/nas-root
  - mkdir -p /mnt/nas-root{NAS_EXPORT_PATH}
  - umount /mnt/nas-root
  - echo '{fstab}' >> /etc/fstab
  - mount {MODELS_MOUNT_DIR}
  - mkdir -p {MODELS_ROOT}
  - systemctl daemon-reload
  - systemctl enable sdprov-ui
  - reboot
"""


def find_gpu_image(instance_type: str) -> str:
    """The newest Ubuntu 22.04 system image sold with `instance_type` in this region."""
    found = alicloud.ecs.get_images(
        owners="system", name_regex=ECS_IMAGE_REGEX, instance_type=instance_type,
        most_recent=True,
    )  # fmt: skip
    if not found.ids:
        from provision.errors import InfraConfigError

        raise InfraConfigError(
            f"no Ubuntu 22.04 system image for sdprov:ecsInstanceType {instance_type} here",
            hint="pulumi config set sdprov:ecsImageId <an image id for this instance type>",
        )
    return str(found.ids[0])


class WebuiInstance(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    url: pulumi.Output[str]
    private_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebuiInstanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:WebuiInstance", name, None, opts)
        pulumi.ResourceOptions(parent=self)
        public = args.egress is EcsEgress.PUBLIC_IP or args.allowed_cidr is not None
        if args.egress is EcsEgress.NAT:
            self._nat(name, args)
        if args.allowed_cidr is not None:
            self._ingress(name, args, args.allowed_cidr)
        user_data: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(
                args.nas_mount_target_domain, args.webui_password, args.registry_password
            ).apply(
                lambda v: cloud_init(
                    nas_domain=str(v[0]),
                    image=args.image,
                    user=args.webui_user,
                    password=str(v[1]),
                    registry=(args.registry_user, str(v[2])) if args.registry_user else None,
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
            if args.allowed_cidr is not None
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

    def _ingress(self, name: str, args: WebuiInstanceArgs, cidr: str) -> None:
        alicloud.ecs.SecurityGroupRule(
            f"{name}-webui-ingress",
            alicloud.ecs.SecurityGroupRuleArgs(
                type="ingress",
                ip_protocol="tcp",
                port_range=f"{WEBUI_PORT}/{WEBUI_PORT}",
                cidr_ip=cidr,
                nic_type="intranet",  # the only value for VPC security groups
                policy="accept",
                priority=1,
                security_group_id=args.security_group_id,
                description="WebUI from the configured CIDR only (sdprov:allowedCidr)",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _nat(self, name: str, args: WebuiInstanceArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        nat = alicloud.vpc.NatGateway(
            f"{name}-nat",
            alicloud.vpc.NatGatewayArgs(
                vpc_id=args.vpc_id, vswitch_id=args.vswitch_id, nat_type="Enhanced",
                payment_type="PayAsYouGo", network_type="internet",
                nat_gateway_name=f"{args.name_prefix}-nat",
            ),
            opts=child,
        )  # fmt: skip
        eip = alicloud.ecs.EipAddress(
            f"{name}-nat-eip",
            alicloud.ecs.EipAddressArgs(
                address_name=f"{args.name_prefix}-nat", internet_charge_type="PayByTraffic",
                payment_type="PayAsYouGo", bandwidth="10",
            ),
            opts=child,
        )  # fmt: skip
        bound = alicloud.ecs.EipAssociation(
            f"{name}-nat-eip-bind",
            alicloud.ecs.EipAssociationArgs(
                allocation_id=eip.id, instance_id=nat.id, instance_type="Nat"
            ),
            opts=child,
        )
        alicloud.vpc.SnatEntry(
            f"{name}-snat",
            alicloud.vpc.SnatEntryArgs(
                snat_table_id=nat.snat_table_ids, source_vswitch_id=args.vswitch_id,
                snat_ip=eip.ip_address,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bound]),
        )  # fmt: skip
