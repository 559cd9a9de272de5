"""Sharded runs: ``--shard I/N`` by hand, or one shard per process under torchrun (rank 0 merges the ranks)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import I3DError
from .outputs import RunRecord, merge_runs


@dataclass(frozen=True)
class Shard:
    """Which part of the list this process evaluates, and where."""

    index: int  # I of I/N: batches I, I+N, I+2N, ...
    total: int  # N
    torchrun: bool = False  # from torchrun's RANK / WORLD_SIZE: the out dir gets a rank directory, rank 0 merges

    def device(self, device: str) -> str:
        """Under torchrun, plain ``cuda`` is this node-local rank's GPU."""
        if self.torchrun and device == "cuda":
            return f"cuda:{int(os.environ.get('LOCAL_RANK', self.index))}"
        return device

    def out_dir(self, out_dir: str | os.PathLike) -> Path:
        """Under torchrun, each rank writes ``out_dir/rank<I>`` (merged into ``out_dir`` by rank 0)."""
        return Path(out_dir) / f"rank{self.index}" if self.torchrun else Path(out_dir)


def parse_shard(text: str | None) -> Shard:
    """The shard of ``--shard I/N``, else of torchrun's RANK/WORLD_SIZE, else the whole list."""
    if text:
        try:
            index, total = (int(v) for v in text.split("/"))
        except ValueError:
            raise I3DError(f"--shard must look like 0/4, got {text!r}") from None
        if not 0 <= index < total:
            raise I3DError(f"--shard {text}: need 0 <= I < N")
        return Shard(index, total)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return Shard(int(os.environ["RANK"]), world, torchrun=True)
    return Shard(0, 1)


def merge_ranks(shard: Shard, out_dir: str | os.PathLike, labels: list[str]) -> RunRecord | None:
    """Under torchrun: wait for every rank (gloo barrier), then rank 0 merges the rank directories (the others get
    None)."""
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        dist.barrier()
        if shard.index != 0:
            return None
        runs = [Path(out_dir) / f"rank{r}" for r in range(shard.total)]
        return merge_runs(runs, out_dir, labels)
    finally:
        dist.destroy_process_group()
