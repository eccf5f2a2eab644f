"""The user-facing object: load a model directory, sample molecules, turn SMILES into latent tokens and back.

No Lightning here: only the domain, the batcher, the tokenizer's and the prior's ``nn.Module``s and
diffusers' schedulers. The pipeline owns the sampling loop: draw sizes and noise, ``set_timesteps``, then
``prior -> guidance -> scheduler.step`` per timestep, then decode and check every output.

>>> pipe = MolgenPipeline.from_pretrained("checkpoints/moses")      # doctest: +SKIP
>>> [m.smiles for m in pipe.sample(3, seed=0)]                      # doctest: +SKIP
>>> [m.smiles for m in pipe.decode(pipe.encode(["CCO", "c1ccccc1"]))]  # doctest: +SKIP
['CCO', 'c1ccccc1']
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from molgen.batch import batch_from_graphs, graphs_from_dense
from molgen.calibration import Calibration
from molgen.checkpoint import load_discriminator, load_domain, load_judge, load_predictor, load_prior, load_tokenizer
from molgen.graph import DomainError
from molgen.judge.model import GraphJudge
from molgen.guidance import SELECTIONS, DiscriminatorGuidance, PrefixPropertyGuidance, PropertyGuidance, RepairSites, Resampling, ValidityGuidance
from molgen.prior.autoregressive import AutoregressivePrior, DiscreteAutoregressivePrior
from molgen.prior.config import PriorConfig
from molgen.prior.model import LatentPrior
from molgen.prior.discriminator import LatentDiscriminator
from molgen.prior.predictor import PropertyPredictor
from molgen.prior.scheduling import clean_estimate, make_scheduler, model_time
from molgen.tokenizer.model import GraphTokenizer

__all__ = [
    "DECODINGS",
    "DEFAULT_PRECISION",
    "DEFAULT_VALIDITY_GUIDANCE",
    "PRECISIONS",
    "DecodedMolecule",
    "Latents",
    "MolgenPipeline",
    "Reconstruction",
    "fast_bfloat16",
]

DECODINGS = ("raw", "valence")
"""``raw``: argmax of the decoder, checked afterwards; ``valence``: bonds placed within each atom's valence
(valid by construction; see the domain's ``from_scores``). Figures of the two are never mixed."""

DEFAULT_VALIDITY_GUIDANCE = 0.0
"""Validity guidance is off unless asked for: on the shipped model a step size of 0.1 with the Euler sampler lifts
raw validity from 77% to 95% but moves FCD/Test away from MOSES and slows sampling (BENCHMARKS.md), and
valence-aware decoding already makes every output valid. Multistep samplers (``dpm``, the shipped default)
extrapolate from the previous prediction and partly undo its edits: use ``sampler="euler"`` with it."""

DEFAULT_PRECISION = "auto"
PRECISIONS = ("fp32", "bf16", "auto")
"""How the prior and guide networks run while sampling: ``fp32``; ``bf16`` (autocast to bfloat16: their
matrix products in bfloat16, the scheduler's arithmetic and everything else in float32); ``auto``: bf16 where
the hardware computes it natively (:func:`fast_bfloat16`), else fp32. The tokenizer always runs in fp32."""

log = logging.getLogger(__name__)


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively: a CUDA GPU that supports bfloat16, or an x86
    CPU with AVX512-BF16 or AMX (read from /proc/cpuinfo; elsewhere False). Other CPUs emulate bfloat16,
    which is slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``: None for float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and fast_bfloat16(device)):
        return torch.bfloat16
    return None


@dataclass
class Latents:
    """Latent tokens of a batch of graphs: ``z`` (B, N, latent_dim), zero-padded; ``mask`` (B, N). ``decoded``: their
    molecules, when the sampler already decoded them (to choose among candidates), with the ``decoding`` used."""

    z: Tensor
    mask: Tensor
    decoded: list[DecodedMolecule] | None = field(default=None, repr=False, compare=False)
    decoding: str | None = None

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        """(n_i, latent_dim) tokens of graph i."""
        return self.z[i, : int(self.mask[i].sum())]


@dataclass
class DecodedMolecule:
    """One decoded graph: canonical SMILES if valid, else None with the reason in ``error``.

    ``state`` is ``valid``, ``invalid`` or (in a sample) ``duplicate``: a valid molecule already produced
    earlier in the same call. ``properties`` are filled for valid and duplicate molecules when asked for.
    """

    smiles: str | None
    state: Literal["valid", "invalid", "duplicate"]
    error: str | None = None
    properties: dict[str, float] = field(default_factory=dict)


@dataclass
class Reconstruction:
    """Input SMILES, its canonical form, what came back, and whether the two are identical."""

    input: str
    canonical: str | None
    reconstructed: str | None
    exact: bool
    error: str | None = None


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MolgenPipeline:
    """A graph domain + tokenizer + (optional) prior loaded from ``checkpoints/<name>/``."""

    def __init__(
        self,
        domain,
        tokenizer: GraphTokenizer,
        prior: LatentPrior | None = None,
        device: str | torch.device = "cpu",
        predictor: PropertyPredictor | None = None,
        guide: LatentPrior | None = None,
        precision: str = DEFAULT_PRECISION,
        discriminator: LatentDiscriminator | None = None,
        calibration: Calibration | None = None,
        judge: GraphJudge | None = None,
    ) -> None:
        self.domain = domain
        self.device = _resolve_device(device)
        self.precision = precision
        self.tokenizer = tokenizer.to(self.device).eval()
        self.prior = None if prior is None else prior.to(self.device).eval()
        if prior is not None and prior.config.latent_dim != tokenizer.config.latent_dim:
            raise ValueError(f"prior latent_dim={prior.config.latent_dim} does not match the tokenizer's {tokenizer.config.latent_dim}")
        if predictor is not None:
            predictor.config.check_fits(self._require_prior().config)
        self.predictor = None if predictor is None else predictor.to(self.device).eval()
        if guide is not None:
            _check_guide(guide.config, self._require_prior().config)
        self.guide = None if guide is None else guide.to(self.device).eval()
        if discriminator is not None:
            discriminator.config.check_fits(self._require_prior().config)
        self.discriminator = None if discriminator is None else discriminator.to(self.device).eval()
        if calibration is not None:
            unknown = [name for name in calibration.properties if name not in getattr(domain, "statistic_names", ())]
            if unknown:
                raise ValueError(f"calibration over {unknown}: not statistics this model's domain computes ({list(getattr(domain, 'statistic_names', ()))})")
        self.calibration = calibration
        if judge is not None:
            judge.config.check_fits(self._require_prior().config, tokenizer.config.node_vocab_sizes, tokenizer.config.edge_vocab_size)
        # chooses among a discrete prior's candidates for a request with targets, by the properties it predicts of
        # their decoded graphs (None: the property predictor chooses, by their latents); set to None to compare
        self.judge = None if judge is None else judge.to(self.device).eval()

    @property
    def precision(self) -> str:
        """How the prior and guide run while sampling, one of :data:`PRECISIONS` (settable)."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        self._autocast = _resolve_precision(value, self.device)
        self._precision = value

    @property
    def network_dtype(self) -> torch.dtype:
        """The dtype the prior and guide compute their matrix products in (what :attr:`precision` resolved to)."""
        return self._autocast or torch.float32

    def _network_precision(self) -> contextlib.AbstractContextManager:
        """The context the prior and guide networks run in: autocast to bfloat16, or nothing (float32)."""
        if self._autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "auto", precision: str = DEFAULT_PRECISION) -> MolgenPipeline:
        """Load ``path/domain.json``, ``path/tokenizer/`` and, if present, ``path/prior/``, ``path/predictor/``
        (a property predictor for property guidance), ``path/guide/`` (a smaller, less trained prior over the
        same latents, for autoguidance), ``path/discriminator/`` (for discriminator guidance) and ``path/calibration/``
        (:mod:`molgen.calibration`; a warning if it was measured on other prior weights) and ``path/judge/`` (a graph
        network predicting the properties of decoded candidates, :mod:`molgen.judge`). ``precision``: see
        :data:`PRECISIONS`."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model directory")
        device = _resolve_device(device)
        prior = load_prior(path / "prior", device=device) if (path / "prior" / "config.json").exists() else None
        predictor = load_predictor(path / "predictor", device=device) if (path / "predictor" / "config.json").exists() else None
        guide = load_prior(path / "guide", device=device) if (path / "guide" / "config.json").exists() else None
        has_discriminator = (path / "discriminator" / "config.json").exists()
        discriminator = load_discriminator(path / "discriminator", device=device) if has_discriminator else None
        tokenizer = load_tokenizer(path / "tokenizer", device=device)
        calibration = None
        if (path / "calibration" / "config.json").exists():
            calibration = Calibration.load(path / "calibration")
            if prior is not None:
                calibration.check_prior(path / "prior" / "model.safetensors")
        judge = load_judge(path / "judge", device=device) if (path / "judge" / "config.json").exists() else None
        return cls(load_domain(path / "domain.json"), tokenizer, prior, device, predictor, guide, precision, discriminator, calibration, judge)

    # --- sampling: noise -> latents -> molecules ------------------------------------------------------

    def sample(self, n: int, **options) -> list[DecodedMolecule]:
        """Sample ``n`` molecules; one record per sample, in order, invalid ones included.

        Takes the keyword arguments of :meth:`sample_iter` (steps, seed, batch_size, conditions,
        guidance_scale, num_nodes, sampler, decoding, properties, temperature, validity_guidance, restarts,
        restart_strength, restart_temperature, property_guidance, autoguidance, discriminator_guidance, top_p,
        candidates, calibrated, selection).
        """
        return list(self.sample_iter(n, **options))

    def sample_iter(
        self,
        n: int,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 512,
        conditions: Conditions | None = None,
        guidance_scale: float = 1.0,
        num_nodes: Sizes | None = None,
        sampler: str | None = None,
        decoding: str = "valence",
        properties: bool = True,
        temperature: float | None = None,
        validity_guidance: float = DEFAULT_VALIDITY_GUIDANCE,
        restarts: int | None = None,
        property_guidance: float = 0.0,
        autoguidance: float | None = None,
        restart_strength: float | None = None,
        restart_temperature: float | None = None,
        discriminator_guidance: float | None = None,
        top_p: float | None = None,
        candidates: int | None = None,
        calibrated: bool | None = None,
        selection: str | None = None,
    ) -> Iterator[DecodedMolecule]:
        """Sample ``n`` molecules, yielded batch by batch (for streaming to disk and progress bars).

        See :meth:`sample_latents` for the prior's arguments; ``decoding`` is one of :data:`DECODINGS`;
        ``properties`` computes the domain's properties of each valid molecule (about 2 ms each). The same
        ``seed`` and ``batch_size`` give the same molecules. Arguments are checked when this is called, before
        the first molecule is asked for.
        """
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        table = self._condition_table(conditions, n)
        self._property_guidance(property_guidance, table)
        self._autoguidance(autoguidance)
        self._discriminator_guidance(discriminator_guidance)
        self._restart_strength(restart_strength)
        self._temperatures(temperature, restart_temperature)
        self._top_p(top_p)
        self._resampling(candidates, discriminator_guidance, property_guidance, table, editing=False, calibrated=calibrated, selection=selection)
        rows = self._size_rows(num_nodes, n)
        return self._sample_stream(
            n, steps, seed, batch_size, table, guidance_scale, rows, sampler, decoding, properties, temperature,
            validity_guidance, restarts, property_guidance, autoguidance, restart_strength, restart_temperature, discriminator_guidance, top_p,
            candidates, calibrated, selection,
        )  # fmt: skip

    def _sample_stream(
        self, n, steps, seed, batch_size, table, guidance_scale, rows, sampler, decoding, properties, temperature,
        validity_guidance, restarts, property_guidance, autoguidance, restart_strength, restart_temperature, discriminator_guidance, top_p,
        candidates=None, calibrated=None, selection=None,
    ) -> Iterator[DecodedMolecule]:  # fmt: skip
        seen: set[str] = set()
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            latents = self._sample_batch(
                count, steps, generator, _take(table, slice(start, start + count)), guidance_scale, sampler, temperature,
                validity_guidance=validity_guidance, sizes=_take(rows, slice(start, start + count)), restarts=restarts,
                property_guidance=property_guidance, autoguidance=autoguidance, restart_strength=restart_strength,
                restart_temperature=restart_temperature, discriminator_guidance=discriminator_guidance, top_p=top_p, candidates=candidates,
                calibrated=calibrated, selection=selection, decoding=decoding,
            )
            decoded = latents.decoded if latents.decoded is not None and latents.decoding == decoding else None
            for molecule in decoded if decoded is not None else self.decode(latents, batch_size=count, decoding=decoding):
                if molecule.smiles is not None:
                    if molecule.smiles in seen:
                        molecule.state = "duplicate"
                    seen.add(molecule.smiles)
                    if properties:
                        molecule.properties = self.domain.properties(molecule.smiles)
                yield molecule

    def sample_latents(
        self,
        n: int,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int = 512,
        conditions: Conditions | None = None,
        guidance_scale: float = 1.0,
        num_nodes: Sizes | None = None,
        sampler: str | None = None,
        temperature: float | None = None,
        start: Latents | None = None,
        strength: float = 1.0,
        keep: Tensor | None = None,
        step_hook: StepHook | None = None,
        validity_guidance: float = DEFAULT_VALIDITY_GUIDANCE,
        restarts: int | None = None,
        property_guidance: float = 0.0,
        autoguidance: float | None = None,
        restart_strength: float | None = None,
        restart_temperature: float | None = None,
        discriminator_guidance: float | None = None,
        top_p: float | None = None,
        candidates: int | None = None,
        calibrated: bool | None = None,
        selection: str | None = None,
    ) -> Latents:
        """Sample latent tokens of ``n`` graphs from the prior.

        ``steps``: scheduler steps (default: the prior's ``default_steps``); ``sampler``: one of
        ``molgen.prior.scheduling.SAMPLERS`` for the prior's objective; ``num_nodes``: the size of every
        graph, or a sequence of ``n`` sizes, one per graph (default: drawn from the training distribution);
        ``conditions``: property name -> target value (any subset of the prior's ``property_names``), or a
        sequence of ``n`` such mappings, one per graph (None or {} for an unconditional one, e.g. the
        properties of a list of reference molecules), with ``guidance_scale`` the classifier-free guidance
        weight (1 = plain conditional sampling, > 1 pushes harder toward the targets); ``temperature``
        scales the starting noise (a discrete prior: divides the log-probabilities of its softmax; below 1:
        more conservative, more often valid, less diverse samples; default: the prior's ``default_temperature``);
        ``top_p`` (a discrete prior only): nucleus sampling, each token drawn among the most likely codes that
        together hold this share of the probability (Holtzman et al. 2020; after the temperature; 1 turns it off;
        default: the prior's ``default_top_p``);
        ``validity_guidance``: step size of the decoder-based validity guidance over the last half of the
        steps (see :mod:`molgen.guidance`; 0, the default, turns it off; 0.1 is the measured setting for the shipped model; used
        when the domain has a valence table; an autoregressive prior instead takes ``steps`` passes of it over
        its finished tokens, which repairs broken graphs); ``restarts``: restart-sampling passes after the first (default:
        the prior's ``default_restarts``): the latents are noised back to ``restart_strength`` of the schedule
        (in (0, 1); default: the prior's ``restart_strength``; the scheduler's first noise level at or below
        it) with fresh noise and denoised again, which moves samples toward the prior's distribution (Xu et
        al. 2023, "Restart sampling"); each pass costs about ``restart_strength`` of a full one;
        ``restart_temperature``: scale of each restart's fresh noise (default: the prior's
        ``restart_temperature``, else ``temperature``; below the starting temperature, restarts sharpen
        the samples toward the prior's modes). Restarts run
        when sampling from noise (also with ``keep``), not for edits with ``strength`` < 1, whose point is to
        stay near ``start``. For a discrete prior ``restarts`` are repair passes instead (also for edits): each
        graph whose argmax decoding breaks a valence or falls apart (:class:`~molgen.guidance.RepairSites`) keeps
        its tokens before its first atom at fault and draws the rest again from the prior given them. ``property_guidance``: step size of classifier guidance toward the
        ``conditions`` by the model's property predictor (:mod:`molgen.prior.predictor`), applied at every
        step on top of classifier-free guidance; 0 (the default) turns it off (a discrete prior: before each token,
        with a predictor that reads prefixes, each of the 32 likeliest codes is tried and its log-probability
        lowered by this weight times the predicted squared error, :class:`~molgen.guidance.PrefixPropertyGuidance`). ``autoguidance``: with a guide
        prior (``guide/`` in the model directory), every prediction is ``guide + autoguidance * (prior -
        guide)`` (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): the guide, a
        smaller or shorter-trained prior over the same latents, makes the same kinds of errors more strongly,
        and extrapolating away from it corrects them; default: the prior's ``default_autoguidance``, 1 turns
        it off; the guide runs at the evaluations whose noise level lies in the prior's
        ``autoguidance_interval`` (default all; the prior alone predicts outside it) and gets classifier-free
        guidance on the same conditions (a discrete prior: each code's log-probability is the guide's +
        ``autoguidance`` x (the prior's - the guide's), renormalised, at every token, as contrastive decoding does
        for language models). ``discriminator_guidance``: with a discriminator (``discriminator/``
        in the model directory, :mod:`molgen.prior.discriminator`), before every step the latents move up the
        gradient of its estimate of log p_data / p_prior, toward the data where the prior errs (Kim et al.
        2023); the weight (default: the discriminator's ``default_scale``; 0 turns it off). A discrete prior
        instead draws the discriminator's ``candidates`` graphs per graph and keeps one of each group with
        probability proportional to exp(weight x logit); not for edits (``start``), which sample as drawn.
        ``candidates`` (a discrete prior only): draw this many graphs per graph returned and keep one of each group
        with probability proportional to exp(score) (sampling-importance-resampling,
        :class:`~molgen.guidance.Resampling`), the score adding the discriminator's weighted logit (with
        discriminator resampling on) and, with ``conditions`` and a property predictor, minus ``property_guidance``
        (1 when that is 0: no token-by-token steering, the candidates still judged) times the predictor's squared
        error on the whole graph (the likelihood prefix guidance weighs codes by); with ``conditions`` and a judge
        (``judge/`` in the model directory, :attr:`judge`), the candidates are decoded instead and the score has minus
        the judge's squared error of each decoded graph to the targets (in place of the predictor's);
        default: the larger of the discriminator's ``candidates`` (when on), the predictor's or the judge's
        ``default_candidates`` (with conditions) and the calibration's ``candidates`` (when on), else 1
        (no resampling); not for edits. ``calibrated`` (a discrete prior with a calibration, ``calibration/`` in the
        model directory, :mod:`molgen.calibration`): the candidates are decoded (valence-aware; :meth:`sample_iter`:
        with its ``decoding``) and each one's score also gets the calibration's log p_data / p_model of its
        statistics (for molecules, its numbers of rings, aromatic rings and rings of 3, 4 or 7+ atoms), so the kept graphs' statistics follow
        the data's; default (None): on when the model has one and the sampling is unconditional (no ``conditions``,
        no ``property_guidance``) and from scratch; True with conditions matches the unconditional data's
        statistics, pulling against the targets. An invalid candidate is kept only if its whole group is.
        ``selection``: how each group's one is kept: "draw" (with probability proportional to exp(score), as above:
        the steered distribution, diverse) or "best" (the highest score: the candidate the predictor puts nearest
        the targets, the closest on average); default: the predictor's ``default_selection`` with conditions,
        else "draw".

        Editing existing latents (analogs, inpainting; SDEdit and RePaint in image diffusion):

        - ``start``: latents (``len(start)`` is ``n`` or 1, broadcast), e.g. from :meth:`encode`; the graphs
          keep their sizes. With ``strength`` < 1 they are noised to that fraction of the schedule (flow:
          x_s = (1 - s) x0 + s noise at the scheduler's sigma s nearest below ``strength``; diffusion:
          ``scheduler.add_noise``) and denoised from there: small strengths give close neighbours. A discrete
          prior keeps each token of ``start`` with probability 1 - ``strength`` and draws the others anew,
          in order, given the tokens before them.
        - ``keep``: (n or 1, N) bool, tokens of ``start`` held fixed: after every step they are reset to
          ``start`` noised to the current level (with the same noise), so the prior fills in the others
          around them and the last step returns them exactly.
        - ``step_hook(index, timestep, x)``: called after every scheduler step with the (B, N, d) normalised
          latents; returns them, possibly changed (for guidance by an external model).
        """
        if start is not None and len(start) not in (1, n):
            raise ValueError(f"start holds {len(start)} graphs; give 1 (broadcast) or n={n}")
        if keep is not None and start is None:
            raise ValueError("keep needs start: the latents whose tokens are kept")
        if not 0 < strength <= 1:
            raise ValueError(f"strength={strength}: must be in (0, 1] (1 = start from pure noise)")
        table = self._condition_table(conditions, n)
        self._resampling(candidates, discriminator_guidance, property_guidance, table, editing=start is not None, calibrated=calibrated, selection=selection)  # checked before any sampling
        rows = None if start is not None else self._size_rows(num_nodes, n)  # edits keep the sizes of ``start``
        generator = torch.Generator().manual_seed(seed)
        chunks = []
        for k in range(0, n, batch_size):
            count = min(batch_size, n - k)
            edit = None if start is None else _Edit(_rows(start, k, count), strength, None if keep is None else _rows(keep, k, count))
            chunks.append(
                self._sample_batch(
                    count, steps, generator, _take(table, slice(k, k + count)), guidance_scale, sampler, temperature, edit, step_hook,
                    validity_guidance, sizes=_take(rows, slice(k, k + count)), restarts=restarts, property_guidance=property_guidance,
                    autoguidance=autoguidance, restart_strength=restart_strength, restart_temperature=restart_temperature,
                    discriminator_guidance=discriminator_guidance, top_p=top_p, candidates=candidates, calibrated=calibrated,
                    selection=selection,
                )
            )
        return _concat_latents(chunks)

    def prior_evaluations(self, steps: int | None = None, restarts: int | None = None, restart_strength: float | None = None) -> int:
        """How many times the prior network runs per sample (without classifier-free guidance, which doubles
        it), for ``steps``, ``restarts`` and ``restart_strength`` as in :meth:`sample_latents` (defaults: the
        prior's)."""
        return len(self._evaluation_times(steps, restarts, restart_strength))

    def guide_evaluations(
        self, steps: int | None = None, restarts: int | None = None, autoguidance: float | None = None, restart_strength: float | None = None
    ) -> int:
        """How many of those evaluations also run the guide prior: with autoguidance on (``autoguidance``,
        default the prior's, not 1, and a guide present), the ones at noise levels inside the prior's
        ``autoguidance_interval``; else none."""
        config = self._require_prior().config
        weight = config.default_autoguidance if autoguidance is None else autoguidance
        if self.guide is None or weight == 1:
            return 0
        low, high = config.autoguidance_interval
        return sum(low <= t <= high for t in self._evaluation_times(steps, restarts, restart_strength))

    def _evaluation_times(self, steps: int | None, restarts: int | None, restart_strength: float | None = None) -> list[float]:
        """The network time of every prior evaluation of one sample: the first pass, then each restart."""
        config = self._require_prior().config
        steps = config.default_steps if steps is None else steps
        restarts = config.default_restarts if restarts is None else restarts
        scheduler = make_scheduler(config)
        scheduler.set_timesteps(steps)
        times = [float(model_time(t, config, 1, torch.device("cpu"))[0]) for t in scheduler.timesteps]
        begin = _begin_index(scheduler, config.objective == "flow", self._restart_strength(restart_strength))
        return times + restarts * times[begin:]

    def _temperatures(self, temperature: float | None, restart_temperature: float | None) -> tuple[float, float]:
        """(starting, restart) noise temperatures to use (defaults: the prior's); a clear error if not positive."""
        config = self._require_prior().config
        temperature = config.default_temperature if temperature is None else temperature
        if restart_temperature is None:
            restart_temperature = temperature if config.restart_temperature is None else config.restart_temperature
        for name, value in (("temperature", temperature), ("restart_temperature", restart_temperature)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}={value!r}: must be a positive number")
        return float(temperature), float(restart_temperature)

    def _top_p(self, top_p: float | None) -> float:
        """The nucleus share to use (default: the prior's ``default_top_p``); a clear error if it is not in (0, 1] or the
        prior has no softmax to truncate."""
        config = self._require_prior().config
        top_p = config.default_top_p if top_p is None else top_p
        if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
            raise ValueError(f"top_p={top_p!r}: must be a number in (0, 1] (1 turns nucleus sampling off)")
        if top_p < 1 and config.architecture != "discrete":
            raise ValueError(
                f"top_p={top_p}: nucleus sampling truncates a discrete prior's softmax; this model's prior is "
                f"{config.architecture!r} (continuous tokens); leave top_p at 1 and lower the temperature instead"
            )
        return float(top_p)

    def _restart_strength(self, strength: float | None) -> float:
        """The restart strength to use (default: the prior's); a clear error if it is not in (0, 1)."""
        strength = self._require_prior().config.restart_strength if strength is None else strength
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 < strength < 1:
            raise ValueError(f"restart_strength={strength!r}: must be a number strictly between 0 and 1 (the share of the schedule each restart redoes)")
        return float(strength)

    def _autoguidance(self, weight: float | None) -> float:
        """The autoguidance weight to use (default: the prior's); a clear error if it cannot be used."""
        weight = self._require_prior().config.default_autoguidance if weight is None else weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"autoguidance={weight!r}: must be a positive number (1 turns it off)")
        if weight != 1 and self.guide is None:
            raise ValueError(f"autoguidance={weight}: this model has no guide prior (no guide/ in its model directory); use 1 (off)")
        return float(weight)

    def _require_prior(self) -> LatentPrior:
        if self.prior is None:
            raise ValueError("this model has no prior (no prior/ in its directory): it can encode and decode, not sample")
        return self.prior

    def _size_rows(self, num_nodes: Sizes | None, n: int) -> Tensor | None:
        """(n,) graph sizes from ``num_nodes`` (one size for all, or one per sample), checked; None: draw them."""
        if num_nodes is None:
            return None
        max_nodes = self._require_prior().config.max_nodes
        single = isinstance(num_nodes, (int, np.integer))
        if not single and (isinstance(num_nodes, (str, bytes)) or not isinstance(num_nodes, Sequence | np.ndarray | Tensor)):
            raise ValueError(f"num_nodes={num_nodes!r}: give a whole number or a sequence of {n} whole numbers")
        sizes = [num_nodes] * n if single else (num_nodes.tolist() if hasattr(num_nodes, "tolist") else list(num_nodes))
        if len(sizes) != n:
            raise ValueError(f"num_nodes holds {len(sizes)} sizes for {n} samples: give one per sample (or a single number)")
        for row, size in enumerate(sizes):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= max_nodes:
                where = "num_nodes" if single else f"num_nodes[{row}]"
                raise ValueError(f"{where}={size!r}: must be a whole number between 1 and this model's max_nodes={max_nodes}")
        return torch.tensor([int(s) for s in sizes], dtype=torch.long)

    def _sizes(self, n: int, generator: torch.Generator) -> Tensor:
        """(n,) graph sizes drawn from the training distribution."""
        counts = torch.tensor(self._require_prior().config.num_nodes_counts, dtype=torch.float64)
        return torch.multinomial(counts, n, replacement=True, generator=generator)

    def _condition_table(self, conditions: Conditions | None, n: int) -> tuple[Tensor, Tensor] | None:
        """Property targets -> normalised (n, P) values and (n, P) presence mask, one row per sample (a single
        mapping is every row's); errors name the property and, for a sequence, the row."""
        if not conditions:
            return None
        per_row = not isinstance(conditions, Mapping)
        if per_row and (isinstance(conditions, (str, bytes)) or not isinstance(conditions, Sequence)):
            raise ValueError(f"conditions={conditions!r}: give a mapping {{name: value}} or a sequence of {n} of them")
        if per_row and len(conditions) != n:
            raise ValueError(f"conditions holds {len(conditions)} rows for {n} samples: give one per sample (or a single mapping)")
        config = self._require_prior().config
        names = config.property_names
        rows = conditions if per_row else [conditions]
        values = torch.zeros(len(rows), len(names))
        given = torch.zeros(len(rows), len(names), dtype=torch.bool)
        for r, row in enumerate(rows):
            where = f"conditions[{r}]: " if per_row else ""
            if row is None:
                continue
            if not isinstance(row, Mapping):
                raise ValueError(f"{where}{row!r} is not a mapping of property name -> target value")
            for name, value in row.items():
                if name not in names:
                    raise ValueError(f"{where}condition {name!r}: this prior is conditioned on {names} only")
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}condition {name!r}: target {value!r} is not a number") from None
                if not math.isfinite(value):
                    raise ValueError(f"{where}condition {name!r}: target {value} is not a finite number")
                k = names.index(name)
                values[r, k] = (value - config.property_mean[k]) / config.property_std[k]
                given[r, k] = True
        if not given.any():
            return None
        if not per_row:
            values, given = values.expand(n, -1), given.expand(n, -1)
        return values.to(self.device), given.to(self.device)

    @torch.no_grad()
    def _sample_batch(
        self,
        batch: int,
        steps: int | None,
        generator: torch.Generator,
        condition: tuple[Tensor, Tensor] | None,
        guidance_scale: float,
        sampler: str | None,
        temperature: float | None = None,
        edit: _Edit | None = None,
        step_hook: StepHook | None = None,
        validity_guidance: float = DEFAULT_VALIDITY_GUIDANCE,
        sizes: Tensor | None = None,
        noise: Tensor | None = None,
        restarts: int | None = None,
        property_guidance: float = 0.0,
        autoguidance: float | None = None,
        restart_strength: float | None = None,
        restart_temperature: float | None = None,
        discriminator_guidance: float | None = None,
        top_p: float | None = None,
        candidates: int | None = None,
        calibrated: bool | None = None,
        selection: str | None = None,
        decoding: str = "valence",
    ) -> Latents:
        prior = self._require_prior()
        autoguidance = self._autoguidance(autoguidance)
        restart_strength = self._restart_strength(restart_strength)
        temperature, restart_temperature = self._temperatures(temperature, restart_temperature)
        top_p = self._top_p(top_p)
        config = prior.config
        steps = config.default_steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"steps={steps}: need at least one sampling step")
        if restarts is not None and (not isinstance(restarts, int) or restarts < 0):
            raise ValueError(f"restarts={restarts!r}: must be a whole number >= 0 (0 turns restart sampling off)")
        mean = torch.tensor(config.latent_mean, device=self.device)
        std = torch.tensor(config.latent_std, device=self.device)
        if isinstance(prior, AutoregressivePrior | DiscreteAutoregressivePrior):
            discrete = isinstance(prior, DiscreteAutoregressivePrior)
            calibration = self._calibration(calibrated, condition, property_guidance, editing=edit is not None)
            resample = self._resampling(
                candidates, discriminator_guidance, property_guidance, condition, editing=edit is not None, calibrated=calibrated, selection=selection,
            ) if discrete else None  # fmt: skip
            unsupported = {
                "step_hook": step_hook is not None, "restarts": bool(restarts) and not discrete,
                "property_guidance": property_guidance > 0 and not discrete,
                "discriminator_guidance": not discrete and self._discriminator_guidance(discriminator_guidance) is not None,
                "autoguidance": autoguidance != 1 and not discrete,
            }  # fmt: skip
            for name, used in unsupported.items():
                if used:
                    raise ValueError(
                        f"{name}: not available with this model's prior, which is autoregressive (it draws the tokens one after "
                        "another and never holds a whole noisy graph to steer); turn it off, or use a model with a set prior"
                    )
            validity = self._validity_guidance(validity_guidance, mean, std)
            steer = None
            if property_guidance > 0:  # a discrete prior: token by token, with a prefix predictor
                guidance = self._property_guidance(property_guidance, condition)
                steer = PrefixPropertyGuidance(guidance.predictor, guidance.targets, guidance.given, guidance.scale, (prior.codes - mean) / std)
            repairs = (config.default_restarts if restarts is None else restarts) if discrete else 0
            guide = self.guide if autoguidance != 1 else None
            if resample is None:
                return self._sample_tokens(
                    prior, batch, steps, generator, condition, guidance_scale, sampler, temperature, edit, sizes, mean, std, validity, top_p, steer,
                    repairs, guide, autoguidance,
                )
            # resampling: ``candidates`` graphs per graph (each with its row's condition and size, if
            # given), one kept of each group
            group = torch.arange(batch).repeat_interleave(resample.candidates)
            drawn = self._sample_tokens(
                prior, len(group), steps, generator, _take(condition, group), guidance_scale, sampler, temperature, None,
                None if sizes is None else sizes[group], mean, std, validity, top_p, None if steer is None else steer.rows(group.to(self.device)),
                repairs, guide, autoguidance,
            )  # fmt: skip
            mask = drawn.mask.to(self.device).bool()
            with self._network_precision():
                scores = resample.scores((drawn.z.to(self.device) - mean) / std * mask.unsqueeze(-1), mask)  # (B * K,)
            decoded = None
            if calibration is not None or resample.judged:
                decoded = self.decode(drawn, batch_size=len(group), decoding=decoding)
            if calibration is not None:  # the candidates' own statistics, from their decoded graphs
                statistics = [None if m.smiles is None else self.domain.statistics(m.smiles, calibration.properties) for m in decoded]
                scores = scores + torch.as_tensor(calibration.log_weights(statistics), dtype=scores.dtype, device=scores.device)
            if resample.judged:  # the judge's squared error (in training standard deviations) of each decoded candidate to its targets
                scores = scores - self._judge_errors(decoded, _take(condition, group)).to(scores)
            kept = resample.pick(scores, generator)
            width = int(mask[kept].sum(1).max())
            chosen = None if decoded is None else [decoded[i] for i in kept.tolist()]
            return Latents(drawn.z[kept, :width], drawn.mask[kept, :width], chosen, None if decoded is None else decoding)
        if edit is None and noise is None:
            if sizes is None:
                sizes = self._sizes(batch, generator)  # (B,)
            if step_hook is None and batch >= 2 * _SIZE_GROUP and sizes.min() < sizes.max():
                # Graphs of similar size are denoised together, so less compute goes to padding (about 1.14x
                # faster on MOSES sizes with 4 groups of a 1,000 batch); results come back in the drawn order.
                # Noise is drawn for the whole batch first, so grouping does not change any graph's sample.
                noise = torch.randn(batch, int(sizes.max()), config.latent_dim, generator=generator)
                order = sizes.argsort(stable=True)
                groups = order.chunk(min(_SIZE_GROUPS, batch // _SIZE_GROUP))
                parts = [
                    self._sample_batch(
                        len(g), steps, generator, _take(condition, g), guidance_scale, sampler, temperature,
                        validity_guidance=validity_guidance, sizes=sizes[g], noise=noise[g, : int(sizes[g].max())], restarts=restarts,
                        property_guidance=property_guidance, autoguidance=autoguidance, restart_strength=restart_strength,
                        restart_temperature=restart_temperature, discriminator_guidance=discriminator_guidance,
                    )
                    for g in groups
                ]  # fmt: skip
                merged = _concat_latents(parts)
                inverse = order.argsort()
                return Latents(merged.z[inverse], merged.mask[inverse])
        if edit is None:
            n = int(sizes.max())
            mask = (torch.arange(n)[None, :] < sizes[:, None]).to(self.device)  # (B, N)
        else:
            mask = edit.start.mask.to(self.device).bool().expand(batch, -1)  # (B, N)
            n = mask.shape[1]
            x0 = (edit.start.z.to(self.device) - mean) / std * mask.unsqueeze(-1)  # (B, N, d) normalised
        if noise is None:
            noise = torch.randn(batch, n, config.latent_dim, generator=generator)
        validity = self._validity_guidance(validity_guidance, mean, std)
        properties = self._property_guidance(property_guidance, condition)
        towards_data = self._discriminator_guidance(discriminator_guidance)
        keep = None if edit is None or edit.keep is None else edit.keep.to(self.device).bool().expand(batch, -1).unsqueeze(-1)  # (B, N, 1)
        passes = _Passes(
            prior, steps, sampler, mask, condition, guidance_scale, temperature, validity, step_hook, self._guided, properties,
            self.guide if autoguidance != 1 else None, autoguidance, self._network_precision, towards_data,
        )  # fmt: skip
        x = passes.denoise(noise.to(self.device), None if edit is None else x0, 1.0 if edit is None else edit.strength, keep)
        if edit is None or edit.strength >= 1:
            # Restart sampling (Xu et al. 2023): noise the result back to ``restart_strength`` of the schedule
            # with fresh noise and denoise again; each pass corrects errors of the last one.
            for _ in range(config.default_restarts if restarts is None else restarts):
                fresh = torch.randn(batch, n, config.latent_dim, generator=generator).to(self.device)
                x = passes.denoise(fresh, x, restart_strength, keep, restart_temperature)
        return Latents((x * std + mean) * mask.unsqueeze(-1), mask)

    def _sample_tokens(
        self, prior: AutoregressivePrior | DiscreteAutoregressivePrior, batch: int, steps: int, generator: torch.Generator, condition: tuple[Tensor, Tensor] | None,
        guidance_scale: float, sampler: str | None, temperature: float, edit: _Edit | None, sizes: Tensor | None, mean: Tensor, std: Tensor,
        validity: ValidityGuidance | None = None, top_p: float = 1.0, steer: PrefixPropertyGuidance | None = None, repairs: int = 0,
        guide: DiscreteAutoregressivePrior | None = None, autoguidance: float = 1.0,
    ) -> Latents:  # fmt: skip
        """A batch from an autoregressive prior (see :class:`_Tokens`, and :class:`_Codes` for a discrete one);
        edits start each token from ``edit``'s.
        A discrete prior then takes up to ``repairs`` passes over the graphs whose argmax decoding breaks a rule
        (:class:`~molgen.guidance.RepairSites`): each such graph keeps its tokens before its first node at fault
        and draws the rest again from the prior given them (kept tokens of an edit stay as they are).
        With ``validity`` guidance, the finished tokens of graphs that decode broken then take ``steps`` of it
        (no graph is noisy at any point, so it repairs the result; kept tokens stay as they are)."""
        x0 = keep = None
        if edit is None:
            sizes = self._sizes(batch, generator) if sizes is None else sizes
            mask = (torch.arange(int(sizes.max()))[None, :] < sizes[:, None]).to(self.device)  # (B, N)
        else:
            mask = edit.start.mask.to(self.device).bool().expand(batch, -1)
            x0 = (edit.start.z.to(self.device) - mean) / std * mask.unsqueeze(-1)
            x0 = x0.expand(batch, -1, -1)
            keep = None if edit.keep is None else edit.keep.to(self.device).bool().expand(batch, -1)
        sizes = mask.sum(1).to(self.device)
        if isinstance(prior, DiscreteAutoregressivePrior):
            # one uniform number per token picks it from the softmax; another decides whether an edit redraws it
            draws = torch.rand(2, batch, mask.shape[1], generator=generator).to(self.device)
            codes = _Codes(prior, sizes, condition, guidance_scale, temperature, mean, std, self._network_precision, top_p, steer, guide, autoguidance)
            x = codes.sample(draws, x0, 1.0 if edit is None else edit.strength, keep)
            x = self._repair_codes(codes, x, mask, keep, repairs, generator, mean, std)
        else:
            noise = torch.randn(batch, mask.shape[1], prior.config.latent_dim, generator=generator).to(self.device)
            tokens = _Tokens(prior, steps, sampler, sizes, condition, guidance_scale, temperature, self._network_precision)
            x = tokens.sample(noise, x0, 1.0 if edit is None else edit.strength, keep)
        for _ in range(steps if validity is not None else 0):
            x = validity(x, mask) * mask.unsqueeze(-1)
            x = x if keep is None else torch.where(keep.unsqueeze(-1), x0, x)
        return Latents((x * std + mean) * mask.unsqueeze(-1), mask)

    def _repair_codes(
        self, codes: _Codes, x: Tensor, mask: Tensor, keep: Tensor | None, passes: int, generator: torch.Generator, mean: Tensor, std: Tensor,
    ) -> Tensor:  # fmt: skip
        """Up to ``passes`` repair passes of a discrete prior's (B, N, d) normalised tokens ``x`` (see
        :meth:`_sample_tokens`); without a valence table in the domain there is nothing to check and ``x`` stays."""
        table = getattr(self.domain, "valence_table", None)
        if passes <= 0 or table is None:
            return x
        sites = RepairSites(self.tokenizer, table(), self.device)
        position = torch.arange(mask.shape[1], device=self.device)
        for _ in range(passes):
            faulty = sites(x * std + mean, mask)
            if keep is not None:
                faulty = faulty & ~keep
            rows = faulty.any(1).nonzero().squeeze(1)
            if len(rows) == 0:
                break
            first = torch.where(faulty[rows], position, mask.shape[1]).amin(1)  # (R,) first node at fault
            hold = position[None, :] < first[:, None]
            if keep is not None:
                hold = hold | keep[rows]
            draws = torch.rand(2, len(rows), mask.shape[1], generator=generator).to(self.device)
            redo = replace(
                codes, sizes=codes.sizes[rows], condition=_take(codes.condition, rows), steer=None if codes.steer is None else codes.steer.rows(rows)
            )
            x = x.clone()
            x[rows] = redo.sample(draws, x[rows], 1.0, hold)
        return x

    def _validity_guidance(self, scale: float, mean: Tensor, std: Tensor) -> ValidityGuidance | None:
        if scale < 0:
            raise ValueError(f"validity_guidance={scale}: must be >= 0 (0 turns it off)")
        table = getattr(self.domain, "valence_table", None)
        if scale == 0 or table is None:
            return None
        return ValidityGuidance(self.tokenizer, table(), mean, std, scale=scale)

    def _discriminator_guidance(self, scale: float | None) -> DiscriminatorGuidance | None:
        """Discriminator guidance at ``scale`` (default: the discriminator's own; none without one), checked."""
        if scale is None:
            scale = 0.0 if self.discriminator is None else self.discriminator.config.default_scale
        if not scale >= 0:
            raise ValueError(f"discriminator_guidance={scale}: must be >= 0 (0 turns it off)")
        if scale == 0:
            return None
        if self.discriminator is None:
            raise ValueError(
                f"discriminator_guidance={scale}: this model has no discriminator (no discriminator/ in its directory): "
                "train one with `molgen train discriminator`"
            )
        return DiscriminatorGuidance(self.discriminator, scale)

    def _calibration(
        self, calibrated: bool | None, condition: tuple[Tensor, Tensor] | None, property_guidance: float, editing: bool
    ) -> Calibration | None:
        """The calibration to resample by (see ``calibrated`` in :meth:`sample_latents`), or None; checked."""
        if calibrated is not None and not isinstance(calibrated, bool):
            raise ValueError(f"calibrated={calibrated!r}: must be True, False or None (the model's default)")
        discrete = isinstance(self.prior, DiscreteAutoregressivePrior)
        if calibrated is None:
            usable = self.calibration is not None and discrete and not editing
            return self.calibration if usable and condition is None and property_guidance <= 0 else None
        if not calibrated:
            return None
        if self.calibration is None:
            raise ValueError("calibrated=True: this model has no calibration (calibration/ in its directory; make one with `molgen calibrate`)")
        if not discrete or editing:
            raise ValueError(
                "calibrated=True: calibration resamples whole graphs drawn from scratch by a discrete prior"
                + (", not edits of given latents (start=...)" if discrete else " (this model's prior is not discrete)") + "; turn it off"
            )  # fmt: skip
        return self.calibration

    def _resampling(
        self, candidates: int | None, discriminator_guidance: float | None, property_guidance: float, condition: tuple[Tensor, Tensor] | None,
        editing: bool, calibrated: bool | None = None, selection: str | None = None,
    ) -> Resampling | None:  # fmt: skip
        """A discrete prior's resampling (``candidates`` and what chooses among them, see :meth:`sample_latents`), or
        None for none; checked. Edits (analogs, scaffolds) keep their own tokens and sample as drawn: off by
        default, an error if asked for."""
        if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1):
            raise ValueError(f"candidates={candidates!r}: must be a whole number >= 1 (graphs drawn per graph returned; 1: no resampling)")
        if selection is not None and selection not in SELECTIONS:
            raise ValueError(f"selection={selection!r}: must be one of {SELECTIONS} (how resampling keeps one candidate of each group)")
        towards_data = self._discriminator_guidance(discriminator_guidance)
        properties = self._property_guidance(property_guidance, condition) if property_guidance > 0 else None
        calibration = self._calibration(calibrated, condition, property_guidance, editing)
        discrete = isinstance(self.prior, DiscreteAutoregressivePrior)
        asked = (candidates or 1) > 1 or (discrete and towards_data is not None and discriminator_guidance is not None)
        if not discrete or editing:
            if asked:
                what = f"candidates={candidates}" if (candidates or 1) > 1 else f"discriminator_guidance={discriminator_guidance}"
                raise ValueError(
                    f"{what}: resampling whole graphs needs a discrete prior drawing them from scratch"
                    + (", not edits of given latents (start=...)" if discrete else " (this model's prior is not discrete)")
                    + "; turn it off"
                )
            return None
        targeted = condition is not None and bool(condition[1].any())  # some row gives a target
        judged = targeted and self.judge is not None
        if judged:
            properties = None  # the judge reads the decoded candidates, far more closely than the predictor reads their tokens
        elif properties is None and targeted and self.predictor is not None and self.predictor.config.reads == "prefix":
            # targets without token-by-token steering: candidates are still judged by the predictor's error to them
            properties = PropertyGuidance(self.predictor, condition[0], condition[1], 1.0)
        if candidates is None:
            candidates = max(
                1 if towards_data is None else self.discriminator.config.candidates,
                1 if properties is None else self.predictor.config.default_candidates,
                1 if calibration is None else calibration.config.candidates,
                self.judge.config.default_candidates if judged else 1,
            )
        if candidates == 1:
            return None
        if towards_data is None and properties is None and calibration is None and not judged:
            raise ValueError(
                f"candidates={candidates}: nothing to choose among the candidates by: needs discriminator resampling (a discriminator/ "
                "in the model directory), conditions and a property predictor (predictor/ in the model directory) or judge (judge/), "
                "or a calibration (calibration/ in the model directory)"
            )
        if selection is None:
            if judged:
                selection = self.judge.config.default_selection
            else:
                selection = self.predictor.config.default_selection if properties is not None else "draw"
        return Resampling(
            candidates, self.discriminator if towards_data is not None else None, 0.0 if towards_data is None else towards_data.scale, properties,
            calibrated=calibration is not None, selection=selection, judged=judged,
        )  # fmt: skip

    @torch.no_grad()
    def _judge_errors(self, molecules: Sequence[DecodedMolecule], condition: tuple[Tensor, Tensor], batch: int = 512) -> Tensor:
        """(B,) the judge's squared error to each row's targets (normalised like the prior's conditions, over the given
        ones) of B decoded molecules; infinite for one that decoded to none."""
        targets, given = condition
        errors = torch.full((len(molecules),), math.inf)
        rows = [i for i, m in enumerate(molecules) if m.smiles is not None]
        for lo in range(0, len(rows), batch):
            part = rows[lo : lo + batch]
            graphs = batch_from_graphs([self.domain.to_graph(molecules[i].smiles) for i in part]).to(self.device)
            index = torch.as_tensor(part, device=given.device)
            predicted = self.judge(graphs.x, graphs.adj, graphs.mask).float().to(given.device)  # (b, P)
            errors[part] = ((predicted - targets[index]).pow(2) * given[index]).sum(-1).cpu()
        return errors

    def _property_guidance(self, scale: float, condition: tuple[Tensor, Tensor] | None) -> PropertyGuidance | None:
        if not scale >= 0:
            raise ValueError(f"property_guidance={scale}: must be >= 0 (0 turns it off)")
        if scale == 0:
            return None
        if self.predictor is None:
            raise ValueError(
                "property_guidance needs a property predictor, and this model has none (no predictor/ in its "
                "directory): train one with `molgen train predictor`"
            )
        if condition is None:
            raise ValueError("property_guidance steers toward property targets: give conditions (e.g. {'QED': 0.9})")
        reads = "prefix" if isinstance(self.prior, DiscreteAutoregressivePrior) else "noisy"
        if self.predictor.config.reads != reads:
            raise ValueError(
                f"property_guidance: this model's property predictor reads {self.predictor.config.reads} latents, its prior needs one that "
                f"reads {reads} latents (a discrete prior: token prefixes; a set prior: noisy latents); train it again with `molgen train predictor`"
            )
        return PropertyGuidance(self.predictor, condition[0], condition[1], scale)

    @staticmethod
    def _guided(
        prior: LatentPrior, x: Tensor, t: Tensor, mask: Tensor, condition: tuple[Tensor, Tensor] | None, scale: float, x_self: Tensor | None = None
    ) -> Tensor:
        """The prior's prediction in float32 (the network may run under bfloat16 autocast), with classifier-free
        guidance: uncond + scale (cond - uncond); ``x_self``: the self-conditioning estimate (see LatentPrior)."""
        if condition is None:
            return prior(x, t, mask, x_self=x_self).float()
        values, given = condition
        if scale == 1.0:
            return prior(x, t, mask, values, given, x_self=x_self).float()
        both = prior(
            torch.cat([x, x]), torch.cat([t, t]), torch.cat([mask, mask]),
            torch.cat([values, values]), torch.cat([given, torch.zeros_like(given)]),
            x_self=None if x_self is None else torch.cat([x_self, x_self]),
        ).float()  # fmt: skip
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    # --- SMILES -> latents ---------------------------------------------------------------------------

    def encode(self, smiles: Sequence[str], batch_size: int = 512) -> Latents:
        """Latent tokens of each SMILES (all must be valid and inside the vocabulary; errors name the SMILES)."""
        graphs = [self._graph(s) for s in smiles]
        chunks = [self._encode_graphs(graphs[k : k + batch_size]) for k in range(0, len(graphs), batch_size)]
        return _concat_latents(chunks)

    def _graph(self, smiles: str):
        graph = self.domain.to_graph(smiles)
        if graph.num_nodes > self.tokenizer.config.max_nodes:
            raise DomainError(
                f"SMILES {smiles!r}: {graph.num_nodes} heavy atoms, more than this tokenizer's "
                f"max_nodes={self.tokenizer.config.max_nodes}"
            )
        return graph

    def _encode_graphs(self, graphs) -> Latents:
        batch = batch_from_graphs(graphs).to(self.device)
        return Latents(self.tokenizer.encode(batch), batch.mask)

    # --- latents -> SMILES ---------------------------------------------------------------------------

    def decode(
        self, latents: Latents, batch_size: int = 512, decoding: str = "raw", connected: bool = True, adjust: ScoreAdjuster | None = None
    ) -> list[DecodedMolecule]:
        """Decode latent tokens to molecules; invalid graphs are kept, with the reason.

        ``raw``: argmax decoding; a graph that is not a valid molecule (or, with ``connected``, falls apart
        into fragments) is ``invalid``. ``valence``: valence-aware decoding (see :data:`DECODINGS`), which
        always gives one connected molecule. ``adjust(index, node_probs, edge_probs)`` (valence decoding
        only) may change graph ``index``'s decoder probabilities first, e.g. to fix atoms and bonds known in
        advance (scaffold decoration).
        """
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if adjust is not None and decoding != "valence":
            raise ValueError("adjust works on decoder probabilities: use it with decoding='valence'")
        out: list[DecodedMolecule] = []
        for k in range(0, len(latents), batch_size):
            z = latents.z[k : k + batch_size].to(self.device)
            mask = latents.mask[k : k + batch_size].to(self.device)
            if decoding == "raw":
                x, adj = self.tokenizer.decode(z, mask)
                out.extend(self._from_graph(graph, connected) for graph in graphs_from_dense(x, adj, mask))
                continue
            node_probs, edge_probs = self.tokenizer.decode_probs(z, mask)
            node_probs = [p.cpu().numpy() for p in node_probs]
            edge_probs = edge_probs.cpu().numpy()
            for b, size in enumerate(mask.sum(1).tolist()):
                nodes, edges = [p[b, :size] for p in node_probs], edge_probs[b, :size, :size]
                if adjust is not None:
                    nodes, edges = adjust(k + b, nodes, edges)
                out.append(self._checked(lambda nodes=nodes, edges=edges: self.domain.from_scores(nodes, edges)))
        return out

    def _from_graph(self, graph, connected: bool) -> DecodedMolecule:
        if connected and graph.num_nodes and (parts := graph.num_components()) > 1:
            return DecodedMolecule(None, "invalid", f"decoded graph falls apart into {parts} fragments")
        return self._checked(lambda: self.domain.from_graph(graph))

    @staticmethod
    def _checked(make_item) -> DecodedMolecule:
        try:
            return DecodedMolecule(make_item(), "valid")
        except ValueError as exc:
            return DecodedMolecule(None, "invalid", str(exc))

    # --- round trip ----------------------------------------------------------------------------------

    def reconstruct(self, smiles: Sequence[str], batch_size: int = 512) -> Iterator[Reconstruction]:
        """SMILES -> latents -> SMILES for each input, yielded in order. Bad inputs are reported, not raised."""
        for k in range(0, len(smiles), batch_size):
            chunk = list(smiles[k : k + batch_size])
            graphs, canon, results = [], [], [None] * len(chunk)
            for n, s in enumerate(chunk):
                try:
                    graphs.append((n, self._graph(s)))
                    canon.append(self.domain.canonical(s))
                except ValueError as exc:  # invalid SMILES, unsupported or out-of-vocabulary atoms, too large
                    results[n] = Reconstruction(s, None, None, False, str(exc))
            if graphs:
                decoded = self.decode(self._encode_graphs([g for _, g in graphs]), connected=False)
                for (n, _), c, d in zip(graphs, canon, decoded, strict=True):
                    results[n] = Reconstruction(chunk[n], c, d.smiles, d.smiles == c, d.error)
            yield from results


ScoreAdjuster = Callable[[int, list[np.ndarray], np.ndarray], tuple[list[np.ndarray], np.ndarray]]
"""``adjust(index, node_probs, edge_probs) -> (node_probs, edge_probs)`` for graph ``index`` of a decode call:
one (n, K_f) array per node field and the (n, n, K_e) edge-label probabilities (label 0 = no bond)."""

Conditions = Mapping[str, float] | Sequence[Mapping[str, float] | None]
"""Property targets: one mapping {name: value} for every sample, or a sequence with one mapping per sample (None
or {} for an unconditional row)."""

Sizes = int | Sequence[int]
"""Graph sizes (numbers of nodes): one for every sample, or a sequence with one per sample."""

StepHook = Callable[[int, Tensor, Tensor], Tensor]
"""``step_hook(index, timestep, x) -> x``: sees (and may change) the normalised (B, N, d) latents after each step."""


@dataclass
class _Passes:
    """One batch's denoising passes: the prior (with classifier-free guidance and autoguidance), a fresh diffusers
    scheduler per pass, validity guidance over the last half of the steps, kept tokens and the step hook."""

    prior: LatentPrior
    steps: int
    sampler: str | None
    mask: Tensor  # (B, N) real tokens
    condition: tuple[Tensor, Tensor] | None
    guidance_scale: float
    temperature: float
    validity: ValidityGuidance | None
    step_hook: StepHook | None
    guided: Callable  # MolgenPipeline._guided
    properties: PropertyGuidance | None = None
    guide: LatentPrior | None = None  # autoguidance's guide prior (None: off)
    autoguidance: float = 1.0
    precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # the networks' context
    towards_data: DiscriminatorGuidance | None = None  # discriminator guidance (None: off)

    def denoise(self, noise: Tensor, x0: Tensor | None, strength: float, keep: Tensor | None, temperature: float | None = None) -> Tensor:
        """From ``x0`` (normalised, or None: pure noise) noised to ``strength`` of the schedule with ``noise``
        (scaled by ``temperature``, default the batch's), denoise to the end; ``keep`` (B, N, 1) tokens of
        ``x0`` held fixed."""
        config, mask = self.prior.config, self.mask.unsqueeze(-1)
        batch = noise.shape[0]
        scheduler = make_scheduler(config, self.sampler)  # fresh: schedulers keep state between steps
        scheduler.set_timesteps(self.steps, device=noise.device)
        flow = config.objective == "flow"
        noise = noise * (self.temperature if temperature is None else temperature)
        x = noise * getattr(scheduler, "init_noise_sigma", 1.0) * mask  # flow matching starts at sigma = 1
        begin = 0
        if x0 is not None:
            begin = _begin_index(scheduler, flow, strength)
            if begin > 0:
                x = _noised(scheduler, flow, x0, noise, begin) * mask
                if hasattr(scheduler, "set_begin_index"):
                    scheduler.set_begin_index(begin)
            if keep is not None:
                x = torch.where(keep, _noised(scheduler, flow, x0, noise, begin), x)
        guided_from = len(scheduler.timesteps) - len(scheduler.timesteps) // 2  # validity guidance: the last half
        # Self-conditioning: each evaluation reads the clean latents the last one implied (none at a pass's
        # first step, as in training; a restart starts afresh). Networks without it ignore the estimate.
        x_self = None
        for index, timestep in enumerate(scheduler.timesteps[begin:], start=begin):
            # 1. prior (with classifier-free guidance) -> 2. scheduler step -> 3. validity guidance -> 4. edits
            t = model_time(timestep, config, batch, x.device)
            if self.properties is not None:  # 0. property guidance at the current noise level
                x = self.properties(x, t, self.mask)
            if self.towards_data is not None:  # 0. discriminator guidance: toward the data where the prior errs
                x = self.towards_data(x, t, self.mask)
            model_in = scheduler.scale_model_input(x, timestep) if hasattr(scheduler, "scale_model_input") else x
            with self.precision():  # the networks' products in bfloat16 if asked; their predictions come back float32
                prediction = self.guided(self.prior, model_in, t, self.mask, self.condition, self.guidance_scale, x_self)
                if self.guide is not None and self._guided_at(t):  # autoguidance: extrapolate away from the weaker guide
                    weak = self.guided(self.guide, model_in, t, self.mask, self.condition, self.guidance_scale, x_self)
                    prediction = weak + self.autoguidance * (prediction - weak)
            if config.self_condition:
                x_self = clean_estimate(config, model_in, t, prediction) * mask
            x = scheduler.step(prediction, timestep, x).prev_sample * mask
            if self.validity is not None and index >= guided_from:
                x = self.validity(x, self.mask)
            if keep is not None:
                # Known tokens follow their own noising path, so the prior always sees them at the current level.
                level = scheduler.step_index if flow else index + 1
                x = torch.where(keep, _noised(scheduler, flow, x0, noise, level), x)
            if self.step_hook is not None:
                x = self.step_hook(index, timestep, x) * mask
        return x

    def _guided_at(self, t: Tensor) -> bool:
        """Whether autoguidance applies at network time ``t`` (the prior's ``autoguidance_interval``)."""
        low, high = self.prior.config.autoguidance_interval
        return low <= float(t[0]) <= high


def _guidance_rows(sizes: Tensor, condition: tuple[Tensor, Tensor] | None, guidance_scale: float) -> tuple[bool, Tensor, Tensor | None, Tensor | None]:
    """What an autoregressive prior reads per row: (guided, sizes, values, given); with classifier-free guidance
    (conditions and a scale other than 1) the conditional rows come first and the unconditional ones after them."""
    guided = condition is not None and guidance_scale != 1.0
    values, given = (None, None) if condition is None else condition
    if guided:
        sizes, values, given = torch.cat([sizes, sizes]), torch.cat([values, values]), torch.cat([given, torch.zeros_like(given)])
    return guided, sizes, values, given


@dataclass
class _Tokens:
    """One batch of an autoregressive prior: token after token in the canonical order, each drawn by running
    the prior's token head from noise along a fresh diffusers scheduler, given the tokens before it (and the
    conditions, with classifier-free guidance). The causal transformer reads each token once (a key-value
    cache); at position j only the graphs with more than j nodes get a token."""

    prior: AutoregressivePrior
    steps: int
    sampler: str | None
    sizes: Tensor  # (B,) nodes per graph
    condition: tuple[Tensor, Tensor] | None
    guidance_scale: float
    temperature: float
    precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    def sample(self, noise: Tensor, x0: Tensor | None = None, strength: float = 1.0, keep: Tensor | None = None) -> Tensor:
        """(B, N, d) normalised tokens. ``noise`` (B, N, d) is each token's starting noise (scaled by the
        temperature); ``x0`` (normalised) with ``strength`` < 1: each token starts from its ``x0`` token noised
        to that level (analogs); ``keep`` (B, N) bool: those tokens are ``x0``'s, exactly, and the tokens after
        them are drawn knowing them."""
        batch, n, _ = noise.shape
        z = torch.zeros_like(noise)
        noise = noise * self.temperature
        cache = self.prior.start_cache()
        guided, sizes, values, given = _guidance_rows(self.sizes, self.condition, self.guidance_scale)
        for j in range(n):
            previous = None if j == 0 else z[:, j - 1]
            with self.precision():
                context = self.prior.context_step(None if previous is None else torch.cat([previous] * (2 if guided else 1)), cache, sizes, values, given)
            rows = (self.sizes > j).nonzero().squeeze(1)
            if keep is not None:
                kept = rows[keep[rows, j]]
                z[kept, j] = x0[kept, j]
                rows = rows[~keep[rows, j]]
            if len(rows) == 0:
                continue
            context = context.float()
            parts = [context[rows]] + ([context[batch:][rows]] if guided else [])
            with self.precision():
                modulations = [self.prior.head.modulations(part) for part in parts]
            start = None if x0 is None else x0[rows, j]
            z[rows, j] = self._draw(modulations, noise[rows, j], start, strength)
        return z

    def _draw(self, modulations: list, noise: Tensor, x0: Tensor | None, strength: float) -> Tensor:
        """One token per row: the head's flow from ``noise`` (or from ``x0`` noised to ``strength``) to sigma 0;
        with two sets of ``modulations`` (conditional, unconditional) classifier-free guidance mixes them."""
        config = self.prior.config
        scheduler = make_scheduler(config, self.sampler)  # fresh: schedulers keep state between steps
        scheduler.set_timesteps(self.steps, device=noise.device)
        x, begin = noise, 0
        if x0 is not None and strength < 1:
            begin = _begin_index(scheduler, True, strength)
            x = _noised(scheduler, True, x0, noise, begin)
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(begin)
        for timestep in scheduler.timesteps[begin:]:
            t = model_time(timestep, config, x.shape[0], x.device)
            with self.precision():
                velocity = [self.prior.head(x, t, m).float() for m in modulations]
            if len(velocity) == 2:
                velocity = [velocity[1] + self.guidance_scale * (velocity[0] - velocity[1])]
            x = scheduler.step(velocity[0], timestep, x).prev_sample
        return x


@dataclass
class _Codes:
    """One batch of a discrete autoregressive prior: token after token in the canonical order, each drawn from
    the softmax of the prior's logits at ``temperature`` given the tokens before it (with classifier-free
    guidance on the log-probabilities when conditioned). The causal transformer reads each token once (a
    key-value cache); at position j only the graphs with more than j nodes get a token."""

    prior: DiscreteAutoregressivePrior
    sizes: Tensor  # (B,) nodes per graph
    condition: tuple[Tensor, Tensor] | None
    guidance_scale: float
    temperature: float
    mean: Tensor  # (d,) latent normalisation
    std: Tensor
    precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    top_p: float = 1.0  # nucleus: draw among the most likely codes that together hold this much probability
    steer: PrefixPropertyGuidance | None = None  # property guidance: changes each code's log-probability
    guide: DiscreteAutoregressivePrior | None = None  # autoguidance: a weaker prior over the same codes (None: off)
    autoguidance: float = 1.0  # log p = guide's + autoguidance x (prior's - guide's), renormalised

    def _log_probs(self, prior: DiscreteAutoregressivePrior, previous: Tensor | None, cache, sizes: Tensor, values, given, guided: bool, batch: int) -> Tensor:
        """(B, V) log-probabilities of the next code from ``prior`` (its key-value ``cache`` advanced by one
        token), with classifier-free guidance when ``guided`` (the rows are then [conditioned; unconditioned])."""
        with self.precision():
            logits = prior.head(prior.context_step(previous, cache, sizes, values, given)).float()
        logp = logits.log_softmax(-1)
        if guided:
            logp = logp[batch:] + self.guidance_scale * (logp[:batch] - logp[batch:])
        return logp

    def sample(self, draws: Tensor, x0: Tensor | None = None, strength: float = 1.0, keep: Tensor | None = None) -> Tensor:
        """(B, N, d) normalised tokens. ``draws`` (2, B, N) uniform numbers: the first picks each token by
        inverting the softmax's cumulative distribution, the second makes an edit of ``x0`` (normalised) with
        ``strength`` < 1 keep each token of ``x0`` with probability 1 - ``strength`` (analogs; the tokens after
        it are drawn knowing it); ``keep`` (B, N) bool: those tokens are ``x0``'s, exactly."""
        _, batch, n = draws.shape
        ids = torch.zeros(batch, n, dtype=torch.long, device=draws.device)
        start = None if x0 is None else self.prior.ids(x0 * self.std + self.mean)  # (B, N)
        held = torch.zeros(batch, n, dtype=torch.bool, device=draws.device)
        if start is not None and strength < 1:
            held = draws[1] >= strength
        if keep is not None:
            held = held | keep
        cache = self.prior.start_cache()
        guide_cache = None if self.guide is None else self.guide.start_cache()
        guided, sizes, values, given = _guidance_rows(self.sizes, self.condition, self.guidance_scale)
        real = torch.arange(n, device=draws.device)[None, :] < self.sizes[:, None]  # (B, N)
        if self.steer is not None:
            drawn_so_far = torch.zeros(batch, n, self.prior.codes.shape[1], device=draws.device)  # normalised, zero = not yet drawn
            codes = (self.prior.codes - self.mean) / self.std
        for j in range(n):
            previous = None if j == 0 else torch.cat([ids[:, j - 1]] * (2 if guided else 1))
            logp = self._log_probs(self.prior, previous, cache, sizes, values, given, guided, batch)
            if self.guide is not None:  # autoguidance: extrapolate away from the weaker guide's choice
                weak = self._log_probs(self.guide, previous, guide_cache, sizes, values, given, guided, batch)
                logp = (weak + self.autoguidance * (logp - weak)).log_softmax(-1)
            if self.steer is not None:
                with self.precision():
                    logp = self.steer(logp, drawn_so_far, j, real)
            probs = (logp / self.temperature).softmax(-1)  # (B, V)
            if self.top_p < 1:
                probs = _nucleus(probs, self.top_p)
            cumulative = probs.cumsum(-1)
            drawn = torch.searchsorted(cumulative, (draws[0, :, j] * cumulative[:, -1]).unsqueeze(-1)).squeeze(-1)
            drawn = drawn.clamp(max=probs.shape[-1] - 1)
            ids[:, j] = drawn if start is None else torch.where(held[:, j], start[:, j], drawn)
            if self.steer is not None:
                drawn_so_far[:, j] = codes[ids[:, j]] * real[:, j, None]
        return (self.prior.values(ids) - self.mean) / self.std * real.unsqueeze(-1)


def _nucleus(probs: Tensor, top_p: float) -> Tensor:
    """(B, V) probabilities with every code outside the nucleus set to zero: the smallest set of most likely
    codes whose probabilities add up to ``top_p`` (the most likely code always stays)."""
    ordered, order = probs.sort(-1, descending=True)
    outside = ordered.cumsum(-1) - ordered >= top_p  # the codes before this one already hold top_p
    return probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))


@dataclass
class _Edit:
    """Latents to start from (one or B graphs), how much of the schedule to redo, and which tokens to keep."""

    start: Latents
    strength: float
    keep: Tensor | None


def _check_guide(guide: PriorConfig, prior: PriorConfig) -> None:
    """A guide prior must read and predict the same normalised latents, with the same conditioning properties."""
    for key in ("objective", "prediction", "latent_dim", "max_nodes", "property_names", "num_train_timesteps", "beta_schedule"):
        if getattr(guide, key) != getattr(prior, key):
            raise ValueError(f"guide prior: {key} is {getattr(guide, key)!r}, the prior's is {getattr(prior, key)!r}; it must match")
    for key in ("latent_mean", "latent_std", "property_mean", "property_std"):
        if not np.allclose(getattr(guide, key), getattr(prior, key), atol=1e-6):
            raise ValueError(f"guide prior: its {key} differs from the prior's; train it on the same latent cache")


def _take(value: Tensor | tuple[Tensor, ...] | None, rows: slice | Tensor) -> Tensor | tuple[Tensor, ...] | None:
    """Rows of a per-sample tensor, or of each tensor of a tuple (None stays None)."""
    if value is None:
        return None
    return tuple(v[rows] for v in value) if isinstance(value, tuple) else value[rows]


def _rows(value: Latents | Tensor, k: int, count: int) -> Latents | Tensor:
    """Rows k..k+count of a batch, or the single row of a broadcast batch of one."""
    if len(value) == 1:
        return value
    if isinstance(value, Latents):
        return Latents(value.z[k : k + count], value.mask[k : k + count])
    return value[k : k + count]


def _begin_index(scheduler, flow: bool, strength: float) -> int:
    """First step of the schedule to run for a start noised to ``strength`` of the way (1: from pure noise)."""
    if strength >= 1:
        return 0
    if flow:  # the first step whose sigma is at most ``strength``
        sigmas = scheduler.sigmas[: len(scheduler.timesteps)].cpu()
        begin = int((sigmas > strength + 1e-6).sum())
        if getattr(scheduler, "order", 1) == 2 and begin % 2:
            # Heun lists every level but the first twice (predictor, then corrector): start on a predictor step
            begin += 1
        return min(begin, len(scheduler.timesteps) - 1)
    steps = len(scheduler.timesteps)
    return min(steps - 1, int(round(steps * (1 - strength))))


def _noised(scheduler, flow: bool, x0: Tensor, noise: Tensor, index: int) -> Tensor:
    """``x0`` noised to the level of schedule position ``index`` (``len(timesteps)``: clean), with ``noise``.

    Flow: x = (1 - s) x0 + s noise with s = ``scheduler.sigmas[index]`` (the last sigma is 0); diffusion:
    the scheduler's own ``add_noise`` at ``timesteps[index]``.
    """
    if flow:
        sigma = scheduler.sigmas[index].to(x0)
        return (1 - sigma) * x0 + sigma * noise
    if index >= len(scheduler.timesteps):
        return x0
    return scheduler.add_noise(x0, noise, scheduler.timesteps[index : index + 1])


_SIZE_GROUPS = 4  # sampling: a batch is split into up to this many groups of similar graph size
_SIZE_GROUP = 128  # ... each of at least this many graphs, so every forward pass stays large


def _concat_latents(chunks: list[Latents]) -> Latents:
    if not chunks:
        raise ValueError("nothing to encode")
    n = max(c.z.shape[1] for c in chunks)
    z = torch.cat([torch.nn.functional.pad(c.z, (0, 0, 0, n - c.z.shape[1])) for c in chunks])
    mask = torch.cat([torch.nn.functional.pad(c.mask, (0, n - c.mask.shape[1])) for c in chunks])
    decodings = {c.decoding for c in chunks}
    if len(decodings) == 1 and None not in decodings and all(c.decoded is not None for c in chunks):  # every chunk decoded alike: keep them
        return Latents(z, mask, [m for c in chunks for m in c.decoded], decodings.pop())
    return Latents(z, mask)
