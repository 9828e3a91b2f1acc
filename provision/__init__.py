"""sdprov: a declarative provisioner for Stable Diffusion WebUI models."""

from __future__ import annotations

__version__ = "0.1.0"
