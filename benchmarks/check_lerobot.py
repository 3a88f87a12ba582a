"""Load an `enrich export --format lerobot` dataset with LeRobot's own ``LeRobotDataset`` and iterate it.

LeRobot is not a dependency of enrich (it pins its own torch and many packages): install it in a separate
virtual environment and run this script with that environment's Python::

    python3 -m venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/pip install torch==2.13.0 torchvision   # the CPU build first: no CUDA download
    /tmp/lerobot-venv/bin/pip install lerobot                      # 0.4.4 when this was written: it pins
                                                                   # torch<2.11 and so replaced the CPU torch
                                                                   # with 2.10.0+cu128 (CUDA wheels, unused)
    enrich export samples.h5 --format lerobot --robot allegro -o /tmp/lerobot_allegro
    /tmp/lerobot-venv/bin/python benchmarks/check_lerobot.py /tmp/lerobot_allegro

Decodes the videos with PyAV (``video_backend="pyav"``): torchcodec needs FFmpeg's shared libraries, which
this machine lacks. Checks every item: state/action shapes, the image's shape, episode and frame indices,
and that batches come out of a torch DataLoader. Prints one summary line; exits 1 on the first mismatch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> int:
    import lerobot
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(sys.argv[1]).resolve()
    start = time.perf_counter()
    ds = LeRobotDataset(repo_id=f"local/{root.name}", root=root, video_backend="pyav")
    meta = ds.meta
    dof = meta.features["observation.state"]["shape"][0]
    h, w, _ = meta.features["observation.images.camera"]["shape"]
    n = 0
    for i in range(len(ds)):
        item = ds[i]
        ep = int(item["episode_index"])
        assert item["observation.state"].shape == (dof,) and item["action"].shape == (dof,), i
        assert item["observation.images.camera"].shape == (3, h, w), (i, item["observation.images.camera"].shape)
        assert item["observation.contact"].shape == (7,), i
        assert int(item["index"]) == i and isinstance(item["task"], str) and item["task"], i
        assert int(item["frame_index"]) == i - int(meta.episodes[ep]["dataset_from_index"]), i
        n += 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)))
    assert batch["observation.images.camera"].shape == (min(8, len(ds)), 3, h, w)
    print(
        f"lerobot {lerobot.__version__}, torch {torch.__version__}: {root.name} loaded, {meta.total_episodes} "
        f"episodes, {n} frames iterated ({dof}-dim state, {w}x{h} video at {meta.fps} fps), a batch of "
        f"{len(batch['index'])} through a DataLoader, tasks {sorted(meta.tasks.index)}; "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
