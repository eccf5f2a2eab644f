"""Interrupted work resumes: a killed ``molgen sample`` continues its file with the samples one uninterrupted run
draws, and a killed training run continues from its last checkpoint. The runs are killed with SIGKILL at whatever
point they reached; the outcome checked does not depend on that point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from molgen.cli import main

from ..conftest import REPO
from .test_cli import TINY

MOLGEN = [sys.executable, "-m", "molgen.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _kill_when(process: subprocess.Popen, ready, limit: float = 300.0) -> None:
    """SIGKILL ``process`` once ``ready()`` holds (or it ended by itself); a bounded wait, never a hang."""
    deadline = time.monotonic() + limit
    while process.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def _rows(path: Path) -> int:
    return path.read_bytes().count(b"\n") - 1 if path.exists() else 0


@pytest.mark.parametrize("suffix", [".csv", ".sdf"])
def test_a_killed_sample_run_resumes_to_the_uninterrupted_file(tmp_path, suffix):
    args = ["sample", "-n", "96", "--batch-size", "16", "--seed", "4", "--no-progress", "--device", "cpu"]
    whole, killed = tmp_path / f"whole{suffix}", tmp_path / f"killed{suffix}"
    assert main([*args, "--out", str(whole)]) == 0
    process = subprocess.Popen([*MOLGEN, *args, "--out", str(killed)], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    _kill_when(process, lambda: killed.exists() and killed.stat().st_size > whole.stat().st_size // 3)
    assert main([*args, "--out", str(killed)]) == 2  # an existing output is never replaced silently
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert killed.read_bytes() == whole.read_bytes()


def test_resume_refuses_another_runs_file(tmp_path, capsys):
    out = tmp_path / "other.csv"
    out.write_text("smiles,score\nCCO,1\n")
    assert main(["sample", "-n", "4", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert out.read_text() == "smiles,score\nCCO,1\n"


def test_overwrite_replaces_and_resume_of_a_complete_file_adds_nothing(tmp_path):
    out = tmp_path / "s.smi"
    args = ["sample", "-n", "8", "--batch-size", "4", "--no-progress", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    assert main([*args, "--overwrite"]) == 0 and out.read_bytes() == first
    assert main([*args, "--resume"]) == 0 and out.read_bytes() == first
    assert main([*args, "--resume", "--overwrite"]) == 2


def test_a_killed_training_run_resumes_from_its_last_checkpoint(tmp_path, moses_sample):
    data = tmp_path / "train.smi"
    data.write_text("\n".join(moses_sample("test", 40, 3)) + "\n")
    tokenizer = tmp_path / "tok"
    assert main(["train", "tokenizer", str(data), "--out", str(tokenizer), *TINY]) == 0
    run = tmp_path / "prior"
    prior = [
        "train", "prior", str(data), "--model", str(tokenizer / "model"), "--out", str(run), "--d-model", "32", "--layers", "1",
        "--batch-size", "8", "--val-every", "1000", "--checkpoint-steps", "10", "--threads", "1", "--accelerator", "cpu", "--devices", "1",
        "--no-progress",
    ]  # fmt: skip
    last = run / "checkpoints" / "last.ckpt"

    def step() -> int:
        try:
            return int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])
        except Exception:  # not written yet, or being written
            return 0

    process = subprocess.Popen([*MOLGEN, *prior, "--max-steps", "100000"], cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    _kill_when(process, lambda: last.exists() and step() >= 30)
    saved = step()
    assert saved >= 30 and saved % 10 == 0  # checkpoints every 10 steps: at most one interval is lost
    assert main([*prior, "--max-steps", str(saved + 5)]) == 0
    assert step() == saved + 5  # it went on from the checkpoint, not from step 0
