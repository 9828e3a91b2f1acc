"""FC 3.0 GPU sizes: the checks FC applies, made before anything is created.

Sources (read 2026-11-30): pulumi-alicloud 4.0.0's `V3Function` docstring (memory a multiple of
64 MB, 128 MB..32 GB; cpu:memory(GB) between 1:1 and 1:4; GPU memory a multiple of 1024 MB) and
FC's "Instance types and specifications" page (provisioned instances only for the Ada, Ada.2,
Ada.3, Hopper and Xpu.1 series). The card sizes are the ones the SDK docstring names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from provision.errors import InfraConfigError


@dataclass(frozen=True, slots=True)
class GpuCard:
    card: str
    memory_mb: int  # the whole card: a function may take part of it, in 1 GB steps
    provisioned: bool  # FC sells provisioned (warm) instances of this series


GPU_CARDS: Final = {
    "fc.gpu.tesla.1": GpuCard("T4", 16384, provisioned=False),
    "fc.gpu.ampere.1": GpuCard("A10", 24576, provisioned=False),
    "fc.gpu.ada.1": GpuCard("Ada 48 GB", 49152, provisioned=True),
}


def check_gpu_size(
    gpu_type: str, gpu_memory_mb: int, cpu: float, memory_mb: int, provisioned: int
) -> None:
    """Raise `InfraConfigError` naming the key FC would refuse, with a value it accepts."""
    card = GPU_CARDS.get(gpu_type)
    if card is None:
        raise InfraConfigError(
            f"sdprov:gpuType is {gpu_type!r}; allowed: {', '.join(GPU_CARDS)}",
            hint="pulumi config set sdprov:gpuType fc.gpu.tesla.1",
        )
    if gpu_memory_mb % 1024 or not 1024 <= gpu_memory_mb <= card.memory_mb:
        raise InfraConfigError(
            f"sdprov:gpuMemoryMB is {gpu_memory_mb}; {gpu_type} ({card.card}) takes a multiple "
            f"of 1024 from 1024 to {card.memory_mb}",
            hint=f"pulumi config set sdprov:gpuMemoryMB {card.memory_mb}",
        )
    if memory_mb % 64 or not 128 <= memory_mb <= 32768:
        raise InfraConfigError(
            f"sdprov:memoryMB is {memory_mb}; FC takes a multiple of 64 from 128 to 32768"
        )
    if round(cpu * 100) % 5 or cpu <= 0:
        raise InfraConfigError(f"sdprov:cpu is {cpu}; FC takes a multiple of 0.05")
    memory_gb = memory_mb / 1024
    if not cpu <= memory_gb <= 4 * cpu:
        raise InfraConfigError(
            f"sdprov:cpu {cpu} and sdprov:memoryMB {memory_mb} do not fit: FC wants memory "
            "(GB) between 1 and 4 times the vCPUs",
            hint=f"pulumi config set sdprov:memoryMB {int(min(4 * cpu, 32) * 1024)}",
        )
    if provisioned and not card.provisioned:
        raise InfraConfigError(
            f"sdprov:provisionedInstances is {provisioned}, but FC sells provisioned instances "
            f"only for the Ada, Hopper and Xpu series, not {gpu_type}",
            hint="pulumi config set sdprov:provisionedInstances 0 (or sdprov:gpuType fc.gpu.ada.1)",
        )
