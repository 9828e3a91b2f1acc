"""The deterministic, byte-balanced assignment of lock files to shard workers."""

from __future__ import annotations

import random

import pytest

from provision.errors import UsageError
from provision.sync.shard import Shard, assign, loads, share


def _ideal(sizes: dict[str, int], n: int) -> float:
    return max(sum(sizes.values()) / n, max(sizes.values()))


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("seed", range(20))
def test_wildly_different_sizes_are_balanced_within_1_5x_of_ideal(n: int, seed: int) -> None:
    rng = random.Random(seed)
    # Sizes over six orders of magnitude, as a lock of checkpoints, LoRAs and embeddings is.
    sizes = {
        f"m/{i}.safetensors": int(10 ** rng.uniform(3, 9.5)) for i in range(rng.randint(n, 60))
    }
    worst = max(loads(sizes, n))
    assert worst <= 1.5 * _ideal(sizes, n), (worst, _ideal(sizes, n))


def test_every_file_has_exactly_one_shard_and_all_workers_agree() -> None:
    sizes = {f"Lora/{i}.safetensors": (i * 7919) % 100_000 + 1 for i in range(200)}
    shares = [share(sizes, Shard(index=i, count=5)) for i in range(5)]
    assert set().union(*shares) == set(sizes)
    assert sum(len(s) for s in shares) == len(sizes)
    assert assign(dict(reversed(list(sizes.items()))), 5) == assign(sizes, 5)  # order-free


def test_a_small_lock_change_moves_few_files() -> None:
    rng = random.Random(1)
    sizes = {f"Lora/{i}.safetensors": rng.randint(10_000, 200_000_000) for i in range(100)}
    before = assign(sizes, 4)
    after = assign(sizes | {"Lora/new.safetensors": 50_000}, 4)
    moved = [p for p in sizes if before[p] != after[p]]
    assert len(moved) <= 25, len(moved)


@pytest.mark.parametrize("text", ["1", "2/2", "-1/3", "a/b", "0/0", "3/2"])
def test_bad_shard_spec_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def test_shard_spec_parses() -> None:
    shard = Shard.parse(" 2/5 ")
    assert (shard.index, shard.count, shard.label, str(shard)) == (2, 5, "2of5", "2/5")
