"""Write one benchmark's section into BENCHMARKS.md (replacing the section of the same title)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = "# molgen benchmarks\n\nEach section is written by the script named in its command; rerun it to refresh.\n"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def print_rows(rows: list[tuple[str, str]]) -> None:
    """Print ``(metric, value)`` rows as two aligned columns."""
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def write_section(title: str, rows: list[tuple[str, str]], notes: str = "", sample: str = "") -> str:
    """Replace (or append) the section ``## title`` with command, date, machine, sample and a metric table, when the
    script was run with ``--write``; the section's text either way (a script may print it)."""
    script = Path(sys.argv[0])
    runner = f"python -m benchmarks.{script.stem}" if script.parent.name == "benchmarks" else f"python {sys.argv[0]}"
    command = " ".join([runner, *(shlex.quote(a) for a in sys.argv[1:])])
    lines = [
        f"## {title}",
        "",
        f"- command: `{command}`",
        f"- date: {_dt.date.today().isoformat()}",
        f"- machine: {machine()}",
    ]
    if sample:
        lines.append(f"- sample: {sample}")
    lines += ["", "metric | value", "--- | ---"] + [f"{k} | {v}" for k, v in rows]
    if notes:
        lines += ["", notes.strip()]
    section = "\n".join(lines) + "\n"
    if "--write" not in sys.argv[1:]:
        return section
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text)
    return section


def training_chain(training: dict) -> tuple[float, int, int]:
    """Seconds, steps and number of runs over a chain of runs (a run started with ``--init-from`` records its
    predecessor's training.json)."""
    seconds, steps, runs = 0.0, 0, 0
    while training:
        seconds += float(training.get("train_seconds", 0.0))
        steps += int(training.get("global_step", 0))
        runs += 1
        training = (training.get("initialized_from") or {}).get("training")
    return seconds, steps, runs
