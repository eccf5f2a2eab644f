"""Guidance distillation: a student prior that predicts, in one evaluation, what its teacher predicts with
autoguidance (two evaluations: the teacher and its weaker guide).

Autoguidance samples with ``guide + w (teacher - guide)`` at noise levels inside the teacher's
``autoguidance_interval`` (and the teacher alone outside it). The student starts as a copy of the teacher and
learns that combination by regression at noisy training latents (Meng et al. 2023, "On distillation of guided
diffusion models", stage one), with the property conditions dropped at random as in the teacher's training.
Classifier-free guidance over properties is linear, so it still works on top of the student: mixing the
student's conditional and unconditional predictions equals mixing the autoguided teacher's.

The noise of each training pair is scaled by a factor drawn in ``noise_scale`` (the sampling temperature scales
the starting noise below 1), so the student learns the teacher where sampling takes it.

The student is an ordinary :class:`LatentPrior` (no guide, ``default_autoguidance`` 1); its training record
names the teacher, the guide and the weight it was distilled from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from molgen.latents import LatentDataset
from molgen.prior.config import PriorConfig
from molgen.prior.model import LatentPrior
from molgen.prior.scheduling import clean_estimate
from molgen.prior.training import DATA_STATISTICS, PriorModule, PriorTrainSettings, latent_batches
from molgen.training import fit, load_into_grown, start_run

__all__ = ["DistillSettings", "GuidanceDistillation", "config_differences", "distill_prior", "student_config"]


def student_config(teacher: PriorConfig, activation: str | None = None) -> PriorConfig:
    """The teacher's config for a student that needs no guide: autoguidance off, optionally another activation."""
    changes = {"default_autoguidance": 1.0}
    if activation is not None:
        changes["activation"] = activation
    return PriorConfig(**{**teacher.to_dict(), **changes})


def config_differences(student: PriorConfig, earlier: PriorConfig) -> list[str]:
    """Config fields (other than data statistics) in which an earlier student differs from ``student``: it can
    continue as this student only if there are none. Self-conditioning may be added (a student of a
    self-conditioned teacher can start from an earlier student without it)."""
    mine, theirs = student.to_dict(), earlier.to_dict()
    added = mine["self_condition"] and not theirs.get("self_condition", False)
    return sorted(k for k in mine if k not in DATA_STATISTICS and mine[k] != theirs.get(k) and not (added and k == "self_condition"))


class GuidanceDistillation(PriorModule):
    """A student prior regressed onto its teacher's autoguided prediction; teacher and guide stay frozen."""

    def __init__(
        self,
        config: dict,
        teacher_config: dict,
        guide_config: dict,
        autoguidance: float,
        interval: tuple[float, float] = (0.0, 1.0),
        noise_scale: tuple[float, float] = (1.0, 1.0),
        **training,
    ) -> None:
        super().__init__(config, **training)
        if not autoguidance > 0:
            raise ValueError(f"autoguidance={autoguidance}: must be > 0 (1: the teacher alone)")
        low, high = noise_scale
        if not 0 < low <= high:
            raise ValueError(f"noise_scale={noise_scale}: must be (low, high) with 0 < low <= high")
        self.teacher = LatentPrior(PriorConfig(**teacher_config)).requires_grad_(False).eval()
        self.guide = LatentPrior(PriorConfig(**guide_config)).requires_grad_(False).eval()

    def load_teacher(self, teacher: LatentPrior, guide: LatentPrior, student: LatentPrior | None = None) -> None:
        """Copy the frozen networks' weights in and start the student (and its average) as the teacher, or as
        ``student`` (an earlier student of the same shape, to continue its distillation)."""
        self.teacher.load_state_dict(teacher.state_dict())
        self.guide.load_state_dict(guide.state_dict())
        # the same parameters whatever the activation; a self-conditioning input the source lacks starts at zero
        source = student or teacher
        load_into_grown(self.model, source, lambda name: name.startswith("self_in."))
        if self.model.config.self_condition and not source.config.self_condition:
            torch.nn.init.zeros_(self.model.self_in.weight)
            torch.nn.init.zeros_(self.model.self_in.bias)
        self.reset_ema()

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen networks never switch to training behaviour (dropout)
        self.guide.eval()
        return self

    def noise(self, z: Tensor, generator: torch.Generator | None) -> Tensor:
        low, high = self.hparams.noise_scale
        scale = low + (high - low) * torch.rand(z.shape[0], 1, 1, device=z.device, generator=generator)
        return torch.randn(z.shape, device=z.device, generator=generator) * scale

    @torch.no_grad()
    def regression_target(self, x_t: Tensor, t: Tensor, mask: Tensor, props: Tensor, known: Tensor, target: Tensor) -> Tensor:
        """The teacher's prediction, autoguided (``guide + w (teacher - guide)``) where ``t`` is in the interval.
        A self-conditioned teacher first predicts without an estimate and then reads its own (its prediction at
        every sampling step after the first); the guide is handed the same estimate."""
        x_self = None
        if self.teacher.config.self_condition:
            x_self = clean_estimate(self.teacher.config, x_t, t, self.teacher(x_t, t, mask, props, known)) * mask.unsqueeze(-1)
        prediction = self.teacher(x_t, t, mask, props, known, x_self=x_self)
        low, high = self.hparams.interval
        rows = ((t >= low) & (t <= high)).nonzero().squeeze(1)
        if len(rows):
            weak = self.guide(x_t[rows], t[rows], mask[rows], props[rows], known[rows], x_self=None if x_self is None else x_self[rows])
            w = self.hparams.autoguidance
            prediction = prediction.index_copy(0, rows, weak + w * (prediction[rows] - weak))
        return prediction


@dataclass
class DistillSettings(PriorTrainSettings):
    """Training settings of a distilled student: a prior's, plus the range of noise scales trained on."""

    noise_scale_low: float = 0.75
    noise_scale_high: float = 1.0
    time_sampling: str = "uniform"  # every noise level: sampling visits them all (restarts revisit the low half)


def distill_prior(
    train: LatentDataset,
    run_dir: str | Path,
    teacher: LatentPrior,
    guide: LatentPrior,
    settings: DistillSettings,
    autoguidance: float | None = None,
    activation: str | None = None,
    val: LatentDataset | None = None,
    resume: bool = True,
    export_extra: dict | None = None,
    init_from: LatentPrior | None = None,
) -> GuidanceDistillation:
    """Distil ``teacher`` autoguided by ``guide`` (weight ``autoguidance``, default the teacher's own, over its
    ``autoguidance_interval``) into a student prior; exports its EMA weights to ``run_dir/model/prior``.

    The student starts as the teacher, or as ``init_from`` (an earlier student: its shape must match)."""
    run_dir = Path(run_dir)
    config = teacher.config
    weight = config.default_autoguidance if autoguidance is None else autoguidance
    if guide.config.latent_dim != config.latent_dim or guide.config.property_names != config.property_names:
        raise ValueError("the guide prior's latent size or properties differ from the teacher's")
    train, val = start_run(settings, train, val)
    student = student_config(config, activation)
    if init_from is not None and (differ := config_differences(student, init_from.config)):
        raise ValueError(f"init_from: the earlier student's config differs from this student's in {differ}")
    interval = tuple(float(v) for v in config.autoguidance_interval)
    module = GuidanceDistillation(
        student.to_dict(),
        config.to_dict(),
        guide.config.to_dict(),
        autoguidance=float(weight),
        interval=interval,
        noise_scale=(settings.noise_scale_low, settings.noise_scale_high),
        **settings.module_options(),
    )
    module.load_teacher(teacher, guide, init_from)
    module.export_dir = run_dir / "model" / "prior"
    distilled = {"autoguidance": float(weight), "interval": list(interval), "noise_scale": [settings.noise_scale_low, settings.noise_scale_high]}
    module.export_extra = {"train_size": len(train), "val_size": len(val), "settings": settings.__dict__, "distilled": distilled, **(export_extra or {})}
    batches = latent_batches(train, val, config, settings.batch_size, sample=settings.posterior_sample)
    fit(module, batches, run_dir, settings, len(train), resume)
    return module
