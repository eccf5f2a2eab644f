"""Export a prior run's latest training weights (not its EMA average) as a model directory.

    python scripts/export_last_weights.py RUN OUT

RUN/model is copied to OUT and OUT/prior's weights are replaced by the ``model.`` weights of
RUN/checkpoints/last.ckpt: for a run stopped early, while the EMA average (decay 0.999) still lags far behind the
trained network. training.json records that the weights are the last ones.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from molgen.checkpoint import load_prior, save_prior


def main(run: str, out: str) -> None:
    run_dir, out_dir = Path(run), Path(out)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(run_dir / "model", out_dir)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    prior = load_prior(out_dir / "prior")
    prior.load_state_dict({k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")})
    training = json.loads((out_dir / "prior" / "training.json").read_text())
    save_prior(prior, out_dir / "prior", training={**training, "weights": "last (not EMA)", "global_step": checkpoint["global_step"]})
    print(f"{out_dir}: weights of step {checkpoint['global_step']}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
