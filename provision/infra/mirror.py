"""The model mirror's cloud side: `sdprov:mirror` (design.md §8, issue 13).

The mirror bucket (created, or adopted when it exists already) is private (ACL and public
access block), encrypted at rest (OSS-managed AES256) and versioned; the sync function's RAM
role may read the mirror prefix and nothing else; the sync function reads it over the region's
internal endpoint. With `seed`, a second bucket in a region where Civitai and Hugging Face are
reachable replicates the prefix into the mirror (OSS cross-region replication), so a team
pushes there (`sdprov mirror push --mirror oss://SEED/PREFIX`) and a cn-* deployment syncs
without the internet.

    sdprov:mirror:
      bucket: team-models-hz     # in alicloud:region
      prefix: sd                 # optional
      adopt: false               # true: the bucket exists; configure it, never delete it
      seed: {region: ap-southeast-1, bucket: team-models-sg, adopt: false}   # optional
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud

from provision.infra.mirror_config import (
    MirrorConfig,
    read_policy,
    sync_env,
    transfer_type,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMirrorArgs:
    name_prefix: str
    region: str
    config: MirrorConfig
    role_name: pulumi.Input[str]  # the functions' RAM role (provision.infra.function_role)


class ModelMirror(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    url: str
    sync_env: dict[str, str]  # what the sync function needs to read the mirror first

    def __init__(
        self, name: str, args: ModelMirrorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sdprov:infra:ModelMirror", name, None, opts)
        cfg = args.config
        mirror = _private_bucket(f"{name}-bucket", cfg.bucket, cfg.adopt, self, None)
        policy = alicloud.ram.Policy(
            f"{name}-read",
            alicloud.ram.PolicyArgs(
                policy_name=f"{args.name_prefix}-mirror-read",
                policy_document=read_policy(cfg.bucket, cfg.object_prefix),
                description="sdprov: the sync function reads the model mirror",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        alicloud.ram.RolePolicyAttachment(
            f"{name}-read-attachment",
            alicloud.ram.RolePolicyAttachmentArgs(
                role_name=args.role_name, policy_name=policy.policy_name, policy_type="Custom"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if cfg.seed is not None:
            self._seed(name, args, mirror)
        self.bucket = mirror
        self.url = cfg.url
        self.sync_env = sync_env(cfg, args.region)
        self.register_outputs({"bucket": self.bucket, "url": self.url})

    def _seed(self, name: str, args: ModelMirrorArgs, mirror: pulumi.Output[str]) -> None:
        seed = args.config.seed
        assert seed is not None
        provider = alicloud.Provider(
            f"{name}-seed-region",
            alicloud.ProviderArgs(region=seed.region),
            opts=pulumi.ResourceOptions(parent=self),
        )
        source = _private_bucket(f"{name}-seed", seed.bucket, seed.adopt, self, provider)
        prefixes = [args.config.object_prefix] if args.config.object_prefix else None
        alicloud.oss.BucketReplication(
            f"{name}-replication",
            alicloud.oss.BucketReplicationArgs(
                bucket=source,
                action="PUT",  # content-addressed objects are only ever added
                destination=alicloud.oss.BucketReplicationDestinationArgs(
                    bucket=mirror,
                    location=f"oss-{args.region}",
                    transfer_type=transfer_type(seed.region, args.region),
                ),
                prefix_set=(
                    alicloud.oss.BucketReplicationPrefixSetArgs(prefixes=prefixes)
                    if prefixes
                    else None
                ),
                historical_object_replication="enabled",
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )


def _private_bucket(
    name: str,
    bucket: str,
    adopt: bool,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource | None,
) -> pulumi.Output[str]:
    """A bucket (created unless adopted) made private, encrypted and versioned."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    bucket_name: pulumi.Output[str] = pulumi.Output.from_input(bucket)
    if not adopt:
        created = alicloud.oss.Bucket(
            name,
            alicloud.oss.BucketArgs(
                bucket=bucket,
                storage_class="Standard",
                redundancy_type="LRS",
                force_destroy=False,  # never delete a mirror that still holds objects
            ),
            # `pulumi destroy` leaves the mirror (and its GBs of models) in place.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        bucket_name = created.bucket
    alicloud.oss.BucketAcl(
        f"{name}-acl", alicloud.oss.BucketAclArgs(bucket=bucket_name, acl="private"), opts=opts
    )
    alicloud.oss.BucketPublicAccessBlock(
        f"{name}-no-public",
        alicloud.oss.BucketPublicAccessBlockArgs(bucket=bucket_name, block_public_access=True),
        opts=opts,
    )
    alicloud.oss.BucketServerSideEncryption(
        f"{name}-encryption",
        alicloud.oss.BucketServerSideEncryptionArgs(bucket=bucket_name, sse_algorithm="AES256"),
        opts=opts,
    )
    alicloud.oss.BucketVersioning(
        f"{name}-versioning",
        alicloud.oss.BucketVersioningInitArgs(bucket=bucket_name, status="Enabled"),
        opts=opts,
    )
    return bucket_name
