"""The guided-design entry point: :class:`Designer` wraps a :class:`~molgen.pipeline.MolgenPipeline` and turns
design requests (targets, analogs, scaffold decoration, motif extension, linker design, scaffold morphing,
interpolation, optimisation) into checked molecules.

Every call returns one :class:`~molgen.design.results.DesignResult` per attempt, in order, invalid and
rejected ones included; ``*_iter`` variants yield them batch by batch (for streaming to a file: an
interrupted run keeps what it wrote). Bad input raises :class:`DesignInputError` naming it. How the prior samples
is a :class:`~molgen.sampling.SamplingConfig` (each call's ``sampling``); the calls' own keywords (``steps``,
``temperature``, ``repairs`` ...) set some of its fields.

>>> designer = Designer.from_pretrained()                                     # doctest: +SKIP
>>> designer.generate(10, targets={"QED": 0.9, "MW": (300, 400)})              # doctest: +SKIP
>>> designer.analogs("CC(=O)Nc1ccc(O)cc1", 10, similarity=0.6)                 # doctest: +SKIP
>>> designer.decorate("O=C(N[*:1])c1ccccc1", 10)                               # doctest: +SKIP
>>> designer.link("[*:1]c1ccccc1.[*:2]C1CCNCC1", 10, linker_atoms=(2, 5))      # doctest: +SKIP
>>> designer.morph("CC(=O)Nc1ccc(OCC(=O)N2CCCC2)cc1", 10)                      # doctest: +SKIP
>>> designer.optimize(objectives.qed(), calls=500).best[:3]                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from molgen.chem import InvalidMoleculeError, StandardizeOptions, StandardizeResult, parse_smiles, standardize_smiles
from molgen.decoding import DECODINGS
from molgen.design.chemistry import Core, Fragments, parse_core, parse_fragments, side_chains
from molgen.design.constraints import Filters, Screen
from molgen.design.editing import (
    LAYOUTS,
    CoreConstraint,
    KeptLabels,
    calibrate_strength,
    interpolation_path,
    span_keep,
    template_grid,
    template_offsets,
)
from molgen.design.optimization import DEFAULT_STRATEGY, STRATEGIES, ModelOperators, Proposal, Search
from molgen.design.oracle import Budget, History, Oracle
from molgen.design.results import DesignInputError, DesignResult, OptimizationResult
from molgen.design.targets import Target, parse_targets, sizes_for_weight
from molgen.device import DEFAULT_PRECISION
from molgen.pipeline import MolgenPipeline
from molgen.records import Latents
from molgen.sampling import SamplingConfig
from molgen.sampling.config import condition_table

__all__ = ["Designer", "Progress"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each batch."""

log = logging.getLogger(__name__)

GUIDANCE_SCALE = 2.0
""":meth:`Designer.generate_iter`'s classifier-free guidance weight toward its targets unless a call sets one."""

EDIT_STEPS = 40
"""A set prior's analogs sample with at least this many scheduler steps: an edit runs only the part of the schedule
below its strength, and with few steps neighbouring strengths fall on the same step, so the similarity knob would
move in jumps."""

ANALOG_ATTEMPTS = 10
""":meth:`Designer.analogs_iter` asked for ``n`` new molecules draws at most this many times ``n`` samples."""

SPAN_EDITS = ("discrete",)
"""Prior architectures whose analogs and optimisation mutations redraw one contiguous span of tokens
(:func:`~molgen.design.editing.span_keep`) instead of every token a little. A discrete prior redrawing tokens at
random places (the pipeline's edit at ``strength`` < 1) leaves the tokens after a changed one as they were, where
they no longer fit it, and its analogs end up far from their seed at any knob; a span drawn after the tokens before
it stays close (BENCHMARKS.md, guided design)."""

MIN_NEW_SHARE = 0.25
"""New analogs: the similarity knob's strength keeps at least this share of the samples distinct new molecules."""

OPTIMIZATION_REPAIRS = 0
""":meth:`Designer.optimize`'s remask edits skip the repair pass unless ``sampling`` sets one: valence-aware decoding
already makes every child a valid molecule, and the pass doubled the time of a PMO run for no gain in its score
(BENCHMARKS.md, goal-directed optimisation).

"""

MORPH_SIZE_SPREAD = 2
""":meth:`Designer.morph_iter`'s new core has the input's scaffold's atom count, give or take this many, unless
``core_atoms`` says otherwise."""

BEST_DESCRIBED = 100
""":meth:`Designer.optimize` describes this many of its best molecules (properties, alerts, similarity)."""

_SEED_STRIDE = 100_003  # batch b of a call with seed s samples with seed s * stride + b


class Designer:
    """Guided design on top of a pipeline.

    Every molecule a user gives (a seed, an interpolation end, a start of optimisation, a core) is read strictly: one
    molecule (a SMILES with several fragments is an error unless ``largest_fragment``), inside the model's chemistry
    and size, and, except for cores (whose atoms decoration fixes), reconstructed exactly by the model's tokenizer:
    otherwise the design would start from another molecule. A mismatch is an error naming the molecule and what it
    decodes to, unless ``from_nearest``, which designs from the reconstruction and records it in :attr:`substitutions`.
    Stereo marks given to a model without stereo are refused the same way, naming the centres and bonds.

    Args:
        pipeline: a :class:`MolgenPipeline` with a prior.
        decoding: ``valence`` (default: every graph a valid molecule) or ``raw`` (argmax, checked).
        batch_size: molecules sampled and decoded at once.
        largest_fragment: take the largest fragment of a molecule given with several (salts, solvents).
        from_nearest: design from the model's reconstruction of a molecule it does not reconstruct exactly, and
            from the flat form of a molecule with stereo marks when the model has no stereo.
        standardize: standardise every molecule a user gives first (:class:`~molgen.chem.StandardizeOptions`:
            salts and solvents stripped, functional groups normalised, charges neutralised, by ChEMBL's structure
            pipeline or RDKit; stereo kept). Off by default. Each change is logged and recorded in
            :attr:`standardized`, so a given molecule is never changed silently.
    """

    def __init__(
        self, pipeline: MolgenPipeline, decoding: str = "valence", batch_size: int = 256, largest_fragment: bool = False, from_nearest: bool = False,
        standardize: StandardizeOptions | None = None,
    ) -> None:  # fmt: skip
        if decoding not in DECODINGS:
            raise DesignInputError(f"decoding={decoding!r}: choose one of {DECODINGS}")
        if pipeline.prior is None:
            raise DesignInputError("this model has no prior (no prior/ in its directory): it cannot generate, so it cannot design")
        self.pipe = pipeline
        self.decoding = decoding
        self.batch_size = batch_size
        self.largest_fragment = largest_fragment
        self.from_nearest = from_nearest
        if standardize is not None and not isinstance(standardize, StandardizeOptions):
            raise DesignInputError(f"standardize={standardize!r}: give a molgen.chem.StandardizeOptions or None")
        self.standardize = standardize
        self.substitutions: dict[str, str | None] = {}
        """Molecules given -> the reconstruction designed from instead (``from_nearest``; None: none was valid)."""
        self.standardized: dict[str, StandardizeResult] = {}
        """Molecules given -> what ``standardize`` made of them, for those it changed (each change in ``.changes``)."""

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "auto", precision: str = DEFAULT_PRECISION, **options) -> Designer:
        """A designer over the model directory ``path`` (default: the shipped model,
        :data:`molgen.pipeline.DEFAULT_MODEL`); ``options`` go to :class:`Designer`."""
        return cls(MolgenPipeline.from_pretrained(path, device=device, precision=precision), **options)

    @property
    def property_names(self) -> list[str]:
        """Properties that can be targeted (those the prior is conditioned on)."""
        return list(self.pipe.prior.config.property_names)

    # --- checks shared by every call --------------------------------------------------------------------

    @property
    def default_property_guidance(self) -> float:
        """The property-guidance strength a request with targets gets unless it sets one (by ``property_guidance``
        or ``sampling``): the model's predictor's ``default_scale`` (0 without a predictor)."""
        predictor = self.pipe.predictor
        return float(predictor.config.default_scale) if predictor is not None else 0.0

    def parse_targets(self, targets: Mapping[str, float | tuple[float, float]] | None) -> dict[str, Target]:
        """Validate targets against this model (unknown, impossible or untrained-for targets raise)."""
        config = self.pipe.prior.config
        return parse_targets(targets, list(config.property_names), config.property_mean, config.property_std)

    @property
    def _stereo(self) -> bool:
        """Whether the model carries stereo (so cores and fragments keep theirs)."""
        return bool(getattr(self.pipe.domain, "stereo", False))

    def _screen(self, must_contain, must_avoid, filters: Filters | None, core: Core | None = None, reference: str | None = None) -> Screen:
        return Screen(self.pipe.domain, must_contain, must_avoid, filters, core=core, reference=reference)

    def check_smiles(self, smiles: str) -> str | None:
        """Why ``smiles`` cannot be designed from (invalid, atoms outside the vocabulary, too large), or None."""
        try:
            self.pipe.encode([smiles])
        except ValueError as exc:
            return str(exc)
        return None

    def _molecule(self, smiles: str, what: str) -> str:
        """The canonical SMILES of the one molecule a user gave (standardised with ``standardize``, its largest fragment
        with ``largest_fragment``)."""
        if self.standardize is not None and self.standardize.active:
            try:
                result = standardize_smiles(smiles, self.standardize)
            except ValueError as exc:
                raise DesignInputError(f"{what}: {exc}") from None
            if result.changed:
                if smiles not in self.standardized:
                    log.warning("%s: standardised to %s (%s)", what, result.smiles, "; ".join(result.changes))
                self.standardized[smiles] = result
            smiles = result.smiles
        try:
            canonical = self.pipe.domain.canonical(smiles)
            dropped = self.pipe.domain.dropped_stereo(smiles) if hasattr(self.pipe.domain, "dropped_stereo") else []
        except ValueError as exc:
            raise DesignInputError(f"{what}: {exc}") from None
        if dropped:  # a model without stereo would design from the flat molecule
            if not self.from_nearest:
                raise DesignInputError(
                    f"{what}: stereo is outside this model's chemistry (it has none), and the molecule has "
                    f"{'; '.join(dropped[:4])}{'; ...' if len(dropped) > 4 else ''}; give it without stereo marks, use a model "
                    "trained with stereo, or design from the molecule without its stereo (from_nearest=True, --from-nearest)"
                )
            if smiles not in self.substitutions:
                log.warning("%s: this model has no stereo; designing from %s without its stereo marks", what, canonical)
            self.substitutions[smiles] = canonical
        if "." in canonical:
            parts = canonical.split(".")
            if not self.largest_fragment:
                raise DesignInputError(
                    f"{what}: {len(parts)} fragments ({', '.join(parts[:4])}); give one molecule, or keep its largest fragment "
                    "(largest_fragment=True, --largest-fragment)"
                )
            canonical = max(parts, key=lambda part: (parse_smiles(part).GetNumHeavyAtoms(), part))
            log.warning("%s: designing from its largest fragment %s", what, canonical)
        return canonical

    def _encode(self, smiles: str, what: str, round_trip: bool = True) -> Latents:
        """The tokens of one user-given molecule, read strictly (see :class:`Designer`); errors name it as ``what``."""
        canonical = self._molecule(smiles, what)
        try:
            latents = self.pipe.encode([canonical])
        except ValueError as exc:  # atoms outside the vocabulary, too many atoms
            raise DesignInputError(f"{what}: {exc}") from None
        if round_trip:
            back = self.pipe.decode(latents, decoding="verified", connected=False)[0].smiles
            if back != canonical:
                if not self.from_nearest:
                    decoded = "no valid molecule" if back is None else repr(back)
                    raise DesignInputError(
                        f"{what}: this model does not reconstruct it: its tokens decode to {decoded}, not {canonical!r}, so the design "
                        "would start from another molecule; use a model trained on such molecules, or design from the reconstruction "
                        "(from_nearest=True, --from-nearest)"
                    )
                if canonical not in self.substitutions:
                    log.warning("%s: not reconstructed exactly; designing from the model's reconstruction %s", what, back)
                self.substitutions[canonical] = back
        return latents

    def _config(self, sampling: SamplingConfig | None, *, editing: bool, conditions: Mapping[str, float] | None = None, **options) -> SamplingConfig:
        """``sampling`` (None: the pipeline's defaults) with the ``options`` that are not None and the designer's
        ``decoding`` and ``batch_size``, checked against this model's prior before any work: an option its prior does
        not take (e.g. ``property_guidance`` of a set prior) or a bad value raises :class:`DesignInputError` naming it.
        ``editing``: the request edits given latents (analogs, decoration, interpolation, mutations)."""
        if sampling is not None and not isinstance(sampling, SamplingConfig):
            raise DesignInputError(f"sampling={sampling!r}: give a molgen.sampling.SamplingConfig or None")
        given = {name: value for name, value in options.items() if value is not None}
        try:
            config = (sampling or SamplingConfig()).replace(decoding=self.decoding, batch_size=self.batch_size, **given)
            self.pipe.sampler.check(config, condition_table(self.pipe.prior.config, conditions, 1, self.pipe.device), editing)
        except ValueError as exc:
            raise DesignInputError(str(exc)) from None
        return config

    @staticmethod
    def _count(n: int, what: str = "n") -> None:
        if not isinstance(n, int) or n < 1:
            raise DesignInputError(f"{what}={n!r}: ask for at least one molecule")

    def _stream(
        self,
        n: int,
        sample: Callable[[int, int, int], Latents],
        screen: Screen,
        progress: Progress | None,
        adjust: CoreConstraint | KeptLabels | None = None,
        choose: Callable[[list, int], list] | None = None,
        oversample: int = 1,
    ) -> Iterator[DesignResult]:
        """Sample (``sample(start, count, batch_index)``), decode and screen ``n`` molecules, batch by batch;
        with ``choose``, ``oversample`` times as many are decoded and ``choose(decoded, count)`` keeps some."""
        decoding = "valence" if adjust is not None else self.decoding
        for b, start in enumerate(range(0, n, self.batch_size)):
            count = min(self.batch_size, n - start)
            latents = sample(start, count * oversample, b)
            # adjust sees each graph's index in the whole call, not in this batch
            shifted = None if adjust is None else lambda i, nodes, edges, start=start: adjust(start + i, nodes, edges)
            if latents.decoded is not None and latents.decoding == decoding and adjust is None:  # decoded while sampling (calibration)
                decoded = latents.decoded
            else:
                decoded = self.pipe.decode(latents, batch_size=self.batch_size, decoding=decoding, adjust=shifted)
            for molecule in decoded if choose is None else choose(decoded, count):
                yield screen(molecule.smiles, molecule.error)
            if progress is not None:
                progress(start + count, n)

    # --- 1. property targets ------------------------------------------------------------------------------

    def generate(self, n: int, **options) -> list[DesignResult]:
        """``n`` molecules toward property ``targets``; see :meth:`generate_iter`."""
        return list(self.generate_iter(n, **options))

    def generate_iter(
        self,
        n: int,
        *,
        seed: int = 0,
        steps: int | None = None,
        targets: Mapping[str, float | tuple[float, float]] | None = None,
        guidance_scale: float | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        filters: Filters | None = None,
        progress: Progress | None = None,
        temperature: float | None = None,
        num_nodes: int | None = None,
        oversample: int = 1,
        size_from_weight: bool = True,
        property_guidance: float | None = None,
        repairs: int | None = None,
        candidates: int | None = None,
        selection: str | None = None,
        sampling: SamplingConfig | None = None,
    ) -> Iterator[DesignResult]:
        """Sample ``n`` molecules, conditioned on ``targets`` ({name: value or (low, high)}; a range conditions
        on its middle) with classifier-free guidance ``guidance_scale`` (1: plain conditional; > 1 pushes
        harder). Targets steer, they do not filter: put hard limits in ``filters.windows``.

        ``size_from_weight``: with an MW target, draw atom counts that fit it
        (:func:`~molgen.design.targets.sizes_for_weight`) instead of the training size distribution.
        ``oversample`` = k > 1: sample k candidates per molecule and keep the one closest to the targets
        (distance in training standard deviations, properties computed with RDKit; selection, on top of guidance).

        How the prior samples: ``sampling`` (:class:`~molgen.sampling.SamplingConfig`), whose fields the keywords
        ``steps``, ``guidance_scale``, ``temperature``, ``property_guidance``, ``repairs``, ``candidates`` and
        ``selection`` replace when given (not None); without ``sampling``, ``guidance_scale`` is
        :data:`GUIDANCE_SCALE`, ``property_guidance`` :attr:`default_property_guidance` when there are targets (else
        0) and every other field the model's default. ``decoding`` and ``batch_size`` are the designer's.

        A set prior takes ``steps`` (scheduler steps), ``temperature`` (scale of the starting noise) and
        ``sampling.sampler``. A discrete prior takes ``temperature`` (of its softmax) and:

        - ``property_guidance`` > 0: steer toward the targets by the model's property predictor (``predictor/``),
          trying its likeliest codes before each token (:class:`molgen.sampling.guidance.PrefixPropertyGuidance`);
        - ``repairs``: passes that redraw each graph whose argmax decoding breaks a valence or falls apart, from its
          first atom at fault (default: the model's; 0: none);
        - ``candidates``: draw this many per molecule and keep one, chosen by the model's own networks: with targets,
          the judge's error to them when the model has one (``judge/``, :mod:`molgen.judge`: a graph network reading
          each decoded candidate), else the predictor's (reading the candidates' latent tokens); without targets, the
          calibration's ring-count ratio when the model has one (:class:`molgen.sampling.guidance.Resampling`).
          Default: the model's (the shipped model: its judge's ``default_candidates`` with targets); 1: none. Unlike
          ``oversample`` it computes no property with RDKit: the networks predict them. ``selection``: ``best``
          keeps the candidate nearest the targets, ``draw`` draws one in proportion to exp(-its predicted squared
          error) (default: the judge's or predictor's ``default_selection``).

        Asking a set prior for a discrete prior's option raises :class:`DesignInputError` naming it.
        """
        self._count(n)
        if not isinstance(oversample, int) or oversample < 1:
            raise DesignInputError(f"oversample={oversample!r}: must be a whole number >= 1")
        parsed = self.parse_targets(targets)
        conditions = {name: t.value for name, t in parsed.items()} or None
        if sampling is None:
            sampling = SamplingConfig(guidance_scale=GUIDANCE_SCALE, property_guidance=self.default_property_guidance if parsed else 0.0)
        config = self._config(
            sampling, editing=False, conditions=conditions, steps=steps, guidance_scale=guidance_scale, temperature=temperature,
            property_guidance=property_guidance, repairs=repairs, candidates=candidates, selection=selection,
        )  # fmt: skip
        screen = self._screen(must_contain, must_avoid, filters)
        prior_config = self.pipe.prior.config
        sizes = None
        if size_from_weight and "MW" in parsed and num_nodes is None:
            k = prior_config.property_names.index("MW")
            sizes = torch.from_numpy(sizes_for_weight(parsed["MW"], prior_config.num_nodes_counts, prior_config.property_mean[k], prior_config.property_std[k]))
        generator = torch.Generator().manual_seed(seed)

        def sample(start: int, count: int, b: int) -> Latents:
            # with an MW target, one size per sample drawn to fit it
            count_nodes = num_nodes if sizes is None else torch.multinomial(sizes, count, replacement=True, generator=generator).tolist()
            return self.pipe.sample_latents(
                count, config=config.replace(batch_size=count), seed=seed * _SEED_STRIDE + b, conditions=conditions, num_nodes=count_nodes
            )

        choose = None if oversample == 1 else lambda decoded, count: self._closest(decoded, parsed, count)
        yield from self._stream(n, sample, screen, progress, choose=choose, oversample=oversample)

    def _closest(self, decoded: list, targets: Mapping[str, Target], count: int) -> list:
        """The ``count`` decoded molecules nearest the targets (summed distance in training standard deviations)."""
        config = self.pipe.prior.config
        scale = {name: config.property_std[config.property_names.index(name)] for name in targets}

        def distance(molecule) -> float:
            if molecule.smiles is None:
                return math.inf
            values = self.pipe.domain.properties(molecule.smiles, list(targets))
            return sum(t.error(values[name]) / scale[name] for name, t in targets.items())

        ranked = sorted(range(len(decoded)), key=lambda i: distance(decoded[i]))
        return [decoded[i] for i in ranked[:count]]

    # --- 2. analogs ---------------------------------------------------------------------------------------

    def analogs(self, smiles: str, n: int, **options) -> list[DesignResult]:
        """``n`` neighbours of a seed molecule; see :meth:`analogs_iter`."""
        return list(self.analogs_iter(smiles, n, **options))

    def analogs_iter(
        self,
        smiles: str,
        n: int,
        *,
        similarity: float = 0.5,
        seed: int = 0,
        steps: int | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        filters: Filters | None = None,
        progress: Progress | None = None,
        strength: float | None = None,
        new: bool = True,
        max_attempts: int | None = None,
        sampling: SamplingConfig | None = None,
    ) -> Iterator[DesignResult]:
        """Neighbours of ``smiles``: its latents partly redrawn by the prior.

        ``similarity`` in [0, 1] is the mean Morgan Tanimoto to aim for: the edit strength giving it is found
        by bisection on small probe batches (about a second); give ``strength`` in (0, 1] to set it directly
        (1 = a fresh sample of the same size). Every output reports its similarity to the seed. A discrete prior
        redraws one contiguous span of the seed's tokens, its length the strength's share (:data:`SPAN_EDITS`); a set
        prior noises every token part of the way and denoises over the lower part of a schedule of ``steps``
        (default: ``sampling.steps``, else the prior's but at least :data:`EDIT_STEPS`). ``sampling``: how the prior
        samples (:class:`~molgen.sampling.SamplingConfig`; options that choose among whole graphs, such as
        ``candidates``, do not apply to edits).

        ``new`` (default): ``n`` is the number of new molecules wanted. An edit often gives the seed back, or a
        molecule given already (most often at high similarity, and for a discrete prior, whose codes decode many
        to one); those are still reported (state ``duplicate``) but do not count, and sampling goes on until ``n``
        others came or ``max_attempts`` samples were drawn (default :data:`ANALOG_ATTEMPTS` x ``n``). ``new=False``:
        exactly ``n`` samples, repeats included. The knob: with ``new``, the mean similarity of the new molecules
        aimed for, but never at a strength where fewer than :data:`MIN_NEW_SHARE` of the samples are new (an edit
        cannot come closer than its smallest change, one redrawn token); with ``new=False``, the mean over all samples, the seed's repeats counting 1.
        """
        self._count(n)
        if not isinstance(similarity, (int, float)) or not 0 <= similarity <= 1:
            raise DesignInputError(f"similarity={similarity!r}: must be in [0, 1]")
        if strength is not None and not 0 < strength <= 1:
            raise DesignInputError(f"strength={strength!r}: must be in (0, 1]")
        if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < n):
            raise DesignInputError(f"max_attempts={max_attempts!r}: must be a whole number >= n={n}")
        latents = self._encode(smiles, f"seed SMILES {smiles!r}")
        smiles = self._molecule(smiles, f"seed SMILES {smiles!r}")  # what the design starts from
        screen = self._screen(must_contain, must_avoid, filters, reference=smiles)
        screen.seen.add(smiles)  # the seed itself comes back as a duplicate
        if strength is None:
            strength = self.strength_for_similarity(smiles, similarity, seed=seed, steps=steps, probe=32 if new else 16, new=new, sampling=sampling)
        config = self._analog_config(sampling, steps)
        keeper = self._kept_stereo(smiles)

        def sample(start: int, count: int, b: int) -> Latents:
            return self._edit(latents, count, strength, config, seed * _SEED_STRIDE + b, keeper, start)

        if not new:
            yield from self._stream(n, sample, screen, progress, keeper)
            return
        budget = ANALOG_ATTEMPTS * n if max_attempts is None else max_attempts
        found = attempts = b = 0
        while found < n and attempts < budget:
            rate = found / attempts if attempts else 1.0  # share of new molecules so far: sample enough for the rest
            count = min(self.batch_size, budget - attempts, max(1, math.ceil((n - found) / max(rate, 0.05))))
            for result in self._stream(count, lambda start, k, _, b=b: sample(start, k, b), screen, None, keeper):
                if found < n:  # samples past the n-th new molecule are not reported
                    found += result.state != "duplicate"
                    yield result
            attempts += count
            b += 1
            if progress is not None:
                progress(found, n)
        if found < n:
            log.warning("analogs of %s: %d new molecules of the %d asked for in %d samples (max_attempts)", smiles, found, n, attempts)

    def _edit(
        self, latents: Latents, count: int, strength: float, config: SamplingConfig | None, seed: int, keeper: KeptLabels | None = None, first: int = 0
    ) -> Latents:
        """``count`` edits at ``strength`` of ``latents`` (one graph, edited ``count`` times, or ``count`` graphs, one
        edit each), sampled with ``config`` (None: the designer's defaults). A discrete prior (:data:`SPAN_EDITS`) keeps
        every token but one contiguous span (its length the strength's share of the graph's tokens, its place random)
        and draws the span again after the tokens before it; a set prior noises every token to ``strength`` of its
        schedule and denoises. ``keeper`` is told which tokens these edits (number ``first`` on) keep."""
        config = self._config(None, editing=True) if config is None else config
        if self.pipe.prior.config.architecture in SPAN_EDITS:
            generator = torch.Generator().manual_seed(seed)
            sizes, length = latents.mask.sum(1).tolist(), latents.mask.shape[1]
            if len(latents) == 1:
                keep = span_keep(int(sizes[0]), length, count, strength, generator)
            else:
                keep = torch.cat([span_keep(int(size), length, 1, strength, generator) for size in sizes])
            if keeper is not None:
                keeper.keep, keeper.first = keep, first
            return self.pipe.sample_latents(count, config=config, seed=seed, start=latents, strength=1.0, keep=keep)
        return self.pipe.sample_latents(count, config=config, seed=seed, start=latents, strength=strength)

    def _kept_stereo(self, smiles: str) -> KeptLabels | None:
        """For analogs of ``smiles`` by span edits with valence decoding and a stereo model: a decoding hook keeping the
        seed's tetrahedral centres and double-bond geometries on atoms kept with all their neighbours (else None)."""
        domain = self.pipe.domain
        if not getattr(domain, "stereo", False) or self.decoding != "valence" or self.pipe.prior.config.architecture not in SPAN_EDITS:
            return None
        graph, vocab = domain.to_graph(smiles), domain.vocab
        bonds = graph.dense_edges()
        field = vocab.node_fields.index("chirality")
        raw_edges = np.array([0, *vocab.edge_values])  # label -> bond value: order + 10 x geometry
        return KeptLabels(
            graph.x, bonds, field,
            pinned_nodes=np.array(vocab.node_values[field]) != 0,
            pinned_edges=(raw_edges // 10 != 0) & (np.arange(len(raw_edges)) > 0),
            edge_groups=np.where(np.arange(len(raw_edges)) > 0, raw_edges % 10, -1),
        )  # fmt: skip

    def _analog_config(self, sampling: SamplingConfig | None, steps: int | None) -> SamplingConfig:
        """The config of an analog edit: ``sampling`` with ``steps`` if given; a set prior without steps in either
        samples with its default but at least :data:`EDIT_STEPS`."""
        config = self._config(sampling, editing=True, steps=steps)
        if config.steps is None and self.pipe.prior.config.architecture not in SPAN_EDITS:
            config = config.replace(steps=max(self.pipe.prior.config.default_steps, EDIT_STEPS))
        return config

    def strength_for_similarity(
        self,
        smiles: str,
        similarity: float,
        *,
        seed: int = 0,
        steps: int | None = None,
        probe: int = 16,
        new: bool = False,
        sampling: SamplingConfig | None = None,
    ) -> float:
        """The edit strength whose outputs have mean Morgan Tanimoto ``similarity`` to ``smiles``
        (bisection, six rounds of ``probe`` samples each). ``new``: the mean over the distinct outputs other than the
        seed itself, at a strength where they are at least :data:`MIN_NEW_SHARE` of the probe (below it repeats
        would make each new molecule cost many samples); else over all outputs. ``steps`` and ``sampling``: as
        :meth:`analogs_iter`'s."""
        latents = self._encode(smiles, f"seed SMILES {smiles!r}")
        canonical = smiles = self._molecule(smiles, f"seed SMILES {smiles!r}")  # what the design starts from
        config = self._analog_config(sampling, steps)
        screen = self._screen((), (), None, reference=smiles)
        enough_new: list[float] = []  # strengths whose probe had at least MIN_NEW_SHARE new molecules

        def mean_similarity(strength: float) -> float:
            out = self._edit(latents, probe, strength, config, seed + 1)
            results = [screen(m.smiles, m.error) for m in self.pipe.decode(out, decoding=self.decoding)]
            if new:  # each distinct molecule other than the seed once: repeats are duplicates in the output too
                results = list({r.smiles: r for r in results if r.smiles != canonical}.values())
            sims = [r.similarity for r in results if r.similarity is not None]
            if new and len(sims) < MIN_NEW_SHARE * probe:
                return math.inf  # mostly the seed and a few neighbours again: closer than any knob
            enough_new.append(strength)
            return sum(sims) / len(sims) if sims else 0.0

        strength = calibrate_strength(mean_similarity, float(similarity))
        if new and enough_new and strength < min(enough_new):  # the bisection's middle fell below the floor
            strength = min(enough_new)
        log.info("analogs of %s: strength %.3f for a mean similarity of %.2f", smiles, strength, similarity)
        return strength

    # --- 3. inpainting: scaffold decoration, motif extension, linker design, scaffold morphing -------------------
    #
    # One mechanism for all four: a template molecule holding the atoms to keep is encoded, its kept atoms' tokens are
    # held while the prior draws the others (molgen.design.editing), CoreConstraint fixes the kept atoms and bonds at
    # decoding, and RDKit checks every output (Core.missing / Fragments.missing). They differ only in the template:
    # a core with capped attachment points (decorate, extend), or fragments each with one attachment point that new
    # atoms join (link: two fragments; morph: a molecule's side chains around a new core).

    def decorate(self, core: str, n: int, **options) -> list[DesignResult]:
        """``n`` decorations of a core; see :meth:`decorate_iter`."""
        return list(self.decorate_iter(core, n, **options))

    def decorate_iter(
        self,
        core: str,
        n: int,
        *,
        seed: int = 0,
        steps: int | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        filters: Filters | None = None,
        progress: Progress | None = None,
        extra_atoms: int | tuple[int, int] | None = None,
        fix_core: bool = True,
        layout: str = "auto",
        sampling: SamplingConfig | None = None,
    ) -> Iterator[DesignResult]:
        """Molecules keeping ``core``: with attachment points (``[*:1]``, ``[*:2]`` ...) substituents go there
        only; a plain core may be substituted wherever it has a hydrogen.

        The core's tokens are kept while the prior generates the rest (see :mod:`molgen.design.editing`);
        ``extra_atoms`` (a count or a (low, high) range) sets how many atoms are added, by default drawn
        from the training size distribution. Outputs that do not keep the core exactly are ``rejected`` (core
        not retained), so every ``valid`` output contains it. ``fix_core`` (default) also fixes the core's
        atoms and bonds in the decoder's probabilities (:class:`~molgen.design.editing.CoreConstraint`);
        without it the kept tokens alone carry the core. ``layout``: the template's tokens ``first`` (new atoms
        after them) or ``last`` (new atoms before them) in the sequence; ``auto`` tries both on 16 attempts
        each and keeps the one whose kept tokens alone retain the core more often (the layout the prior
        handles better for this core; which one depends on the core). ``steps`` (a set prior's scheduler steps) and
        ``sampling`` (:class:`~molgen.sampling.SamplingConfig`): how the prior samples.
        """
        return self._decorated(core, "core", n, seed=seed, steps=steps, must_contain=must_contain, must_avoid=must_avoid, filters=filters,
                               progress=progress, extra_atoms=extra_atoms, fix_core=fix_core, layout=layout, sampling=sampling)  # fmt: skip

    def extend(self, motif: str, n: int, **options) -> list[DesignResult]:
        """``n`` molecules grown from a motif; see :meth:`extend_iter`."""
        return list(self.extend_iter(motif, n, **options))

    def extend_iter(self, motif: str, n: int, **options) -> Iterator[DesignResult]:
        """Motif extension (GenMol's term): molecules that continue a fragment, ``motif``, at its attachment points
        (``[*:1]``, ``[*:2]`` ...; a motif without any grows wherever it has a hydrogen).

        The same design as :meth:`decorate_iter`, with the same options (``extra_atoms``: atoms added): decorating a
        scaffold and extending a motif differ in what the kept part is to the chemist (the centre of the molecule or a
        piece of it), not in how the model fills in the rest. Messages name the input as a motif."""
        return self._decorated(motif, "motif", n, **options)

    def _decorated(
        self, core: str, what: str, n: int, *, extra_atoms=None, layout: str = "auto", steps: int | None = None, sampling: SamplingConfig | None = None,
        must_contain: Iterable[str] = (), must_avoid: Iterable[str] = (), filters: Filters | None = None, **options,
    ) -> Iterator[DesignResult]:  # fmt: skip
        self._count(n)
        try:
            parsed = parse_core(core, what, self._stereo)
        except InvalidMoleculeError as exc:
            raise DesignInputError(str(exc)) from None
        if "." in parsed.template:
            raise DesignInputError(f"{what} {core!r}: {parsed.template.count('.') + 1} fragments; give one {what} (to join fragments by new atoms: link)")
        template = self._template_tokens(parsed, f"{what} {core!r} (as {parsed.template!r})")
        config = self._inpainting_config(layout, sampling, steps)
        length = template.shape[0]

        def draw(count: int, seed: int) -> tuple[list[int], list[int]]:
            return [0] * count, self._new_atom_sizes(length, count, extra_atoms, seed, f"{what} {core!r}", "extra_atoms")

        screen = self._screen(must_contain, must_avoid, filters, core=parsed, reference=parsed.template)
        yield from self._inpaint_iter(parsed, [(parsed, template)], draw, n, screen=screen, config=config, layout=layout, **options)

    def link(self, fragments: str | Sequence[str], n: int, **options) -> list[DesignResult]:
        """``n`` molecules joining two fragments; see :meth:`link_iter`."""
        return list(self.link_iter(fragments, n, **options))

    def link_iter(
        self,
        fragments: str | Sequence[str],
        n: int,
        *,
        seed: int = 0,
        steps: int | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        filters: Filters | None = None,
        progress: Progress | None = None,
        linker_atoms: int | tuple[int, int] | None = None,
        fix_core: bool = True,
        layout: str = "auto",
        sampling: SamplingConfig | None = None,
    ) -> Iterator[DesignResult]:
        """Linker design: molecules in which new atoms join two fragments, each with one attachment point, given as two
        SMILES (``["[*:1]c1ccccc1", "[*:2]C1CCNCC1"]``) or one dotted SMILES (``"[*:1]c1ccccc1.[*:2]C1CCNCC1"``).

        Every ``valid`` output is one molecule holding both fragments exactly (RDKit substructure match; their atoms
        keep their bonds and only the attachment point bonds to new atoms), on atoms of their own, with at least one new
        atom between them; others are ``rejected`` with the reason. ``linker_atoms`` (a count >= 1 or a (low, high)
        range): the linker's atoms (every new atom, branches included), by default drawn so that whole molecules follow
        the training size distribution. A linker of one atom is sampled around a template of the two fragments
        bonded to one carbon, a longer one around the two fragments each capped by a carbon (the linker's ends). Other
        options as :meth:`decorate_iter`'s (``layout``: where the template's tokens sit; ``fix_core``: fix the
        fragments' atoms and bonds at decoding)."""
        self._count(n)
        try:
            parsed = parse_fragments(fragments, stereo=self._stereo)
        except InvalidMoleculeError as exc:
            raise DesignInputError(str(exc)) from None
        if len(parsed.parts) != 2:
            raise DesignInputError(f"fragments {parsed.text!r}: {len(parsed.parts)} fragments; a linker joins two")
        templates = [(core, self._template_tokens(core, f"fragments {parsed.text!r} (as {core.template!r})")) for core in (parsed.bridged, parsed.split)]
        config = self._inpainting_config(layout, sampling, steps)

        def draw(count: int, seed: int) -> tuple[list[int], list[int]]:
            sizes = self._new_atom_sizes(parsed.atoms, count, linker_atoms, seed, f"fragments {parsed.text!r}", "linker_atoms", least=1)
            return [0 if size == parsed.atoms + 1 else 1 for size in sizes], sizes  # one new atom: the bridged template

        screen = self._screen(must_contain, must_avoid, filters, core=parsed)
        yield from self._inpaint_iter(parsed, templates, draw, n, seed=seed, progress=progress, fix_core=fix_core, screen=screen, config=config, layout=layout)

    def morph(self, smiles: str, n: int, **options) -> list[DesignResult]:
        """``n`` scaffold morphs of a molecule; see :meth:`morph_iter`."""
        return list(self.morph_iter(smiles, n, **options))

    def morph_iter(
        self,
        smiles: str,
        n: int,
        *,
        seed: int = 0,
        steps: int | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        filters: Filters | None = None,
        progress: Progress | None = None,
        core_atoms: int | tuple[int, int] | None = None,
        fix_core: bool = True,
        layout: str = "auto",
        sampling: SamplingConfig | None = None,
    ) -> Iterator[DesignResult]:
        """Scaffold morphing (scaffold hopping with the side chains fixed): molecules keeping every side chain of
        ``smiles`` exactly around a new core.

        The side chains are what lies outside the molecule's Bemis-Murcko scaffold (RDKit's ``MurckoScaffold`` and
        ``ReplaceCore``; :func:`~molgen.design.chemistry.side_chains`), each with its attachment point; new atoms,
        ``core_atoms`` of them (a count or a (low, high) range; default: the scaffold's atom count +- 2, at least one
        per side chain), join them as the new core. Every ``valid`` output is one molecule holding all the side chains
        exactly, with a Murcko scaffold other than the input's; others are ``rejected`` with the reason (``same
        scaffold as the input``, ``side chains ... not all retained``). Outputs report their similarity to ``smiles``.
        A molecule without rings, or without anything outside its scaffold, is a :class:`DesignInputError`. Other
        options as :meth:`decorate_iter`'s."""
        self._count(n)
        what = f"molecule {smiles!r}"
        canonical = self._molecule(smiles, what)
        try:
            scaffold, chains = side_chains(canonical)
            parsed = parse_fragments(chains, name="side chains", scaffold=scaffold, stereo=self._stereo)
        except InvalidMoleculeError as exc:
            raise DesignInputError(str(exc)) from None
        template = self._template_tokens(parsed.split, f"{what}: its side chains {parsed.text!r} (as {parsed.split.template!r})")
        config = self._inpainting_config(layout, sampling, steps)
        if core_atoms is None:
            size = parse_smiles(scaffold).GetNumAtoms()
            room = self.pipe.prior.config.max_nodes - parsed.atoms
            core_atoms = (min(max(len(chains), size - MORPH_SIZE_SPREAD), room), min(size + MORPH_SIZE_SPREAD, room))

        def draw(count: int, seed: int) -> tuple[list[int], list[int]]:
            return [0] * count, self._new_atom_sizes(parsed.atoms, count, core_atoms, seed, what, "core_atoms", least=len(chains))

        screen = self._screen(must_contain, must_avoid, filters, core=parsed, reference=canonical)
        yield from self._inpaint_iter(parsed, [(parsed.split, template)], draw, n, seed=seed, progress=progress, fix_core=fix_core, screen=screen,
                                      config=config, layout=layout)  # fmt: skip

    def _template_tokens(self, core: Core, what: str) -> torch.Tensor:
        """The tokens (T, d) of a template (a core's or fragments'), in its canonical order; errors name it as ``what``."""
        try:
            tokens = self.pipe.encode([core.template])[0]  # a fragments' template is several molecules: read as it is
        except ValueError as exc:  # atoms outside the vocabulary, too many atoms
            raise DesignInputError(f"{what}: {exc}") from None
        if max(core.core_positions, default=-1) >= tokens.shape[0]:
            raise DesignInputError(f"{what}: the model reads {tokens.shape[0]} atoms of its template, fewer than the atoms to keep")
        return tokens

    def _inpainting_config(self, layout: str, sampling: SamplingConfig | None, steps: int | None) -> SamplingConfig:
        if layout not in ("auto", *LAYOUTS):
            raise DesignInputError(f"layout={layout!r}: choose 'auto' or one of {LAYOUTS}")
        return self._config(sampling, editing=True, steps=steps)

    def _inpaint_iter(
        self,
        kept: Core | Fragments,
        templates: list[tuple[Core, torch.Tensor]],
        draw: Callable[[int, int], tuple[list[int], list[int]]],
        n: int,
        *,
        seed: int = 0,
        progress: Progress | None = None,
        fix_core: bool = True,
        screen: Screen,
        config: SamplingConfig,
        layout: str,
    ) -> Iterator[DesignResult]:
        """Sample ``n`` molecules around templates (each a :class:`Core` and its tokens (T, d)) keeping ``kept``:
        ``draw(count, seed)`` says which template each molecule grows from and its atom count."""
        which, sizes = draw(n, seed)
        if layout == "auto":
            layout = self._best_layout(kept, templates, draw, seed, config)
        offsets = template_offsets(sizes, [templates[w][1].shape[0] for w in which], layout)
        adjust = None
        if fix_core:
            constraints = [self._core_constraint(core, offsets) for core, _ in templates]
            adjust = lambda index, nodes, edges: constraints[which[index]](index, nodes, edges)

        def sample(start: int, count: int, b: int) -> Latents:
            rows = which[start : start + count]
            grid, keep = template_grid([templates[w][1] for w in rows], [templates[w][0].core_positions for w in rows], sizes[start : start + count], offsets[start : start + count])
            return self.pipe.sample_latents(count, config=config.replace(batch_size=count), seed=seed * _SEED_STRIDE + b, start=grid, keep=keep)

        yield from self._stream(n, sample, screen, progress, adjust)

    def _best_layout(self, kept: Core | Fragments, templates: list[tuple[Core, torch.Tensor]], draw, seed: int, config: SamplingConfig, probe: int = 16) -> str:
        """The layout whose kept tokens alone (no constraint at decoding) give outputs that keep ``kept`` (and pass its
        other checks: a morph's new ring scaffold) most often."""
        which, sizes = draw(probe, seed + 1)
        retained = {}
        for layout in LAYOUTS:
            offsets = template_offsets(sizes, [templates[w][1].shape[0] for w in which], layout)
            grid, keep = template_grid([templates[w][1] for w in which], [templates[w][0].core_positions for w in which], sizes, offsets)
            latents = self.pipe.sample_latents(probe, config=config.replace(batch_size=probe), seed=seed + 1, start=grid, keep=keep)
            decoded = [m.smiles for m in self.pipe.decode(latents, decoding="valence") if m.smiles is not None]
            retained[layout] = sum(kept.missing(parse_smiles(s)) is None for s in decoded)
        best = max(LAYOUTS, key=lambda k: retained[k])  # ties: the first, "first"
        log.info("%s %s: kept tokens alone retain it %s of %d times; layout %r", kept.what if isinstance(kept, Core) else kept.name, kept.text, retained, probe, best)
        return best

    def _core_constraint(self, core: Core, offsets: list[int]) -> CoreConstraint:
        domain = self.pipe.domain
        graph = domain.to_graph(core.template)
        hydrogens = domain.hydrogen_counts(graph)
        open_atoms = [] if core.attachment_points else [p for p in core.core_positions if hydrogens[p] > 0]
        return CoreConstraint(graph.x, graph.dense_edges(), core.core_positions, open_atoms, offsets)

    def _new_atom_sizes(self, length: int, n: int, new_atoms, seed: int, what: str, option: str, least: int = 0) -> list[int]:
        """Atom counts of ``n`` molecules growing from ``length`` atoms: ``new_atoms`` (a count or a (low, high) range,
        the keyword ``option``, at least ``least``) more, or without it from the training size distribution (at least
        max(``least``, 1) more). Errors name the input as ``what``."""
        config = self.pipe.prior.config
        room = config.max_nodes - length
        if room < max(least, 1):
            raise DesignInputError(f"{what}: {length} atoms leave no room under this model's max_nodes={config.max_nodes}")
        generator = torch.Generator().manual_seed(seed)
        if new_atoms is None:  # the training size distribution above the template's size
            first = length + max(least, 1)
            counts = torch.tensor(config.num_nodes_counts, dtype=torch.float64)[first:]
            if counts.sum() == 0:
                counts = torch.ones(config.max_nodes + 1 - first)
            return (torch.multinomial(counts, n, replacement=True, generator=generator) + first).tolist()
        if isinstance(new_atoms, int) and not isinstance(new_atoms, bool):
            low = high = new_atoms
        elif isinstance(new_atoms, (tuple, list)) and len(new_atoms) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in new_atoms):
            low, high = new_atoms
        else:
            raise DesignInputError(f"{option}={new_atoms!r}: a whole number or a (low, high) pair of them")
        if not least <= low <= high or high > room:
            raise DesignInputError(f"{option}={new_atoms!r}: must be between {least} and {room} for {what}")
        return (torch.randint(low, high + 1, (n,), generator=generator) + length).tolist()

    # --- 4. interpolation ---------------------------------------------------------------------------------

    def interpolate(
        self,
        smiles_a: str,
        smiles_b: str,
        n_points: int = 8,
        *,
        filters: Filters | None = None,
        refine: float = 0.0,
        seed: int = 0,
        steps: int | None = None,
        sampling: SamplingConfig | None = None,
    ) -> list[DesignResult]:
        """Molecules along the straight latent line from ``smiles_a`` to ``smiles_b`` (ends included);
        ``similarity`` is to ``smiles_a``. ``refine`` in [0, 1) redraws that share of the inner points with the prior
        (pulls them back toward molecules the prior knows), sampled with ``sampling`` and ``steps``."""
        if not isinstance(n_points, int) or n_points < 2:
            raise DesignInputError(f"n_points={n_points!r}: an interpolation needs at least 2 points")
        if not 0 <= refine < 1:
            raise DesignInputError(f"refine={refine!r}: must be in [0, 1)")
        config = self._config(sampling, editing=True, steps=steps)
        a = self._encode(smiles_a, f"first SMILES {smiles_a!r}")[0]
        b = self._encode(smiles_b, f"second SMILES {smiles_b!r}")[0]
        path = interpolation_path(a, b, n_points)
        if refine > 0 and n_points > 2:
            inner = Latents(path.z[1:-1], path.mask[1:-1])
            inner = self.pipe.sample_latents(n_points - 2, config=config, seed=seed, start=inner, strength=refine)
            path.z[1:-1, : inner.z.shape[1]] = inner.z.cpu()
        screen = self._screen((), (), filters, reference=smiles_a)
        return [screen(m.smiles, m.error) for m in self.pipe.decode(path, decoding=self.decoding)]

    # --- 5. optimisation ----------------------------------------------------------------------------------

    def optimize(
        self,
        objective: Callable,
        *,
        calls: int | None = 1000,
        seconds: float | None = None,
        strategy: str = DEFAULT_STRATEGY,
        start: list[str] | None = None,
        n: int = 64,
        seed: int = 0,
        history: str | Path | None = None,
        filters: Filters | None = None,
        must_contain: Iterable[str] = (),
        must_avoid: Iterable[str] = (),
        reference: str | None = None,
        progress: Callable[[int, int | None, float | None], None] | None = None,
        sampling: SamplingConfig | None = None,
    ) -> OptimizationResult:
        """Maximise a black-box ``objective`` within a budget of ``calls`` objective calls and/or ``seconds``.

        ``objective`` scores one SMILES (``str -> float``) or a batch (``list[str] -> list[float]``); which one is found
        at the first call, and a function that is neither is a :class:`DesignInputError` then. No molecule is ever sent
        to it twice, and every molecule sent is valid and passes the constraints (``must_contain``, ``must_avoid``,
        ``filters``; ``reference``: report similarity to it, with ``filters.min_similarity`` a hard constraint).

        ``strategy``: how proposals are made (:data:`~molgen.design.optimization.STRATEGIES`: ``mixed``, the default,
        ``remask``, ``surrogate``, ``graph-ga``); ``n`` proposals per round. ``start``: SMILES to start from (default:
        ``n`` * 4 samples from the prior). ``history``: a CSV file every call is appended to as it is made; if it exists,
        the run resumes from it (its molecules are not scored again and count against ``calls``). ``progress(calls
        used, call budget, best score)`` after each round. Ctrl-C returns what was found so far.
        """
        oracle = self._oracle(objective, calls, seconds, history)
        self._count(n)
        if strategy not in STRATEGIES:
            raise DesignInputError(f"strategy={strategy!r}: choose one of {', '.join(STRATEGIES)}")
        proposals = None
        if start is not None:
            if isinstance(start, str) or not list(start):
                raise DesignInputError(f"start={start!r}: give a list of SMILES to start from, or None for samples from the prior")
            proposals = [Proposal(self._molecule(s, f"start SMILES {s!r}"), None, "start") for s in start]
        fresh = self._config(sampling, editing=False)
        edit = self._config(sampling if sampling is not None else SamplingConfig(repairs=OPTIMIZATION_REPAIRS), editing=True)
        screen = self._screen(must_contain, must_avoid, filters, reference=reference)
        model = ModelOperators(
            sample=lambda count, s: self._proposals(self.pipe.sample_latents(count, config=fresh, seed=s), None, "sample"),
            remask=lambda parents, strength, s: self._proposals(self._edit(parents, len(parents), strength, edit, s), None, "remask"),
            encode=self._tokens_or_none,
            max_nodes=self.pipe.prior.config.max_nodes,
        )
        search = Search(oracle, self.pipe.domain.canonical, screen, model, strategy, n=n, seed=seed)
        result = search.run(proposals, initial=4 * n, progress=progress)
        for k, record in enumerate(result.best[:BEST_DESCRIBED]):  # the best with their properties, alerts, similarity
            described = screen(record.smiles)
            described.state, described.score = "valid", record.score
            result.best[k] = described
        return result

    def _oracle(self, objective: Callable, calls: int | None, seconds: float | None, history: str | Path | None) -> Oracle:
        if not callable(objective):
            raise DesignInputError(f"objective {objective!r} is not callable: give a function str -> float or list[str] -> list[float]")
        return Oracle(objective, Budget(calls, seconds), History(history))

    def _proposals(self, latents: Latents, parent: str | None, operator: str) -> list[Proposal]:
        """Decode ``latents`` into proposals carrying their tokens."""
        out = []
        for b, molecule in enumerate(self.pipe.decode(latents, batch_size=self.batch_size, decoding=self.decoding)):
            out.append(Proposal(molecule.smiles, parent, operator, latents[b].cpu(), molecule.error))
        return out

    def _tokens_or_none(self, smiles: list[str]) -> list[torch.Tensor | None]:
        """Tokens of each molecule, None for one the tokenizer cannot encode (an element, a size)."""
        try:
            latents = self.pipe.encode(smiles)
            return [latents[b].cpu() for b in range(len(smiles))]
        except ValueError:
            out = []
            for s in smiles:
                try:
                    out.append(self.pipe.encode([s])[0].cpu())
                except ValueError:
                    out.append(None)
            return out
