"""Pulumi components that deploy Stable Diffusion WebUI on Alibaba Cloud (design.md §7).

Each module holds one `ComponentResource` with a frozen `*Args` dataclass and the type token
`sdprov:infra:<Name>`. `__main__.py` at the repository root reads the stack config once
(`config.read_config`) and wires these together; tests instantiate them directly under
`pulumi.runtime.set_mocks`.
"""
