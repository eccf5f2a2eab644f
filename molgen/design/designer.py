"""The guided-design entry point: :class:`Designer` wraps a :class:`~molgen.pipeline.MolgenPipeline` and turns
design requests (targets, analogs, decoration, interpolation, optimisation) into checked molecules.

Every call returns one :class:`~molgen.design.results.DesignResult` per attempt, in order, invalid and
rejected ones included; ``*_iter`` variants yield them batch by batch (for streaming to a file: an
interrupted run keeps what it wrote). Bad input raises :class:`DesignInputError` naming it. How the prior samples
is a :class:`~molgen.sampling.SamplingConfig` (each call's ``sampling``); the calls' own keywords (``steps``,
``temperature``, ``repairs`` ...) set some of its fields.

>>> designer = Designer.from_pretrained()                                     # doctest: +SKIP
>>> designer.generate(10, targets={"QED": 0.9, "MW": (300, 400)})              # doctest: +SKIP
>>> designer.analogs("CC(=O)Nc1ccc(O)cc1", 10, similarity=0.6)                 # doctest: +SKIP
>>> designer.decorate("O=C(N[*:1])c1ccccc1", 10)                               # doctest: +SKIP
>>> designer.optimize(objectives.qed(), calls=500).best[:3]                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import torch

from molgen.chem import InvalidMoleculeError, parse_smiles
from molgen.decoding import DECODINGS
from molgen.design.chemistry import Core, parse_core
from molgen.design.constraints import Filters, Screen
from molgen.design.editing import (
    LAYOUTS,
    CoreConstraint,
    calibrate_strength,
    decoration_grid,
    interpolation_path,
    span_keep,
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
    """

    def __init__(
        self, pipeline: MolgenPipeline, decoding: str = "valence", batch_size: int = 256, largest_fragment: bool = False, from_nearest: bool = False
    ) -> None:
        if decoding not in DECODINGS:
            raise DesignInputError(f"decoding={decoding!r}: choose one of {DECODINGS}")
        if pipeline.prior is None:
            raise DesignInputError("this model has no prior (no prior/ in its directory): it cannot generate, so it cannot design")
        self.pipe = pipeline
        self.decoding = decoding
        self.batch_size = batch_size
        self.largest_fragment = largest_fragment
        self.from_nearest = from_nearest
        self.substitutions: dict[str, str | None] = {}
        """Molecules given -> the reconstruction designed from instead (``from_nearest``; None: none was valid)."""

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
        """The canonical SMILES of the one molecule a user gave (its largest fragment with ``largest_fragment``)."""
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
            back = self.pipe.decode(latents, decoding="raw", connected=False)[0].smiles
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
        adjust: CoreConstraint | None = None,
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

        def sample(start: int, count: int, b: int) -> Latents:
            return self._edit(latents, count, strength, config, seed * _SEED_STRIDE + b)

        if not new:
            yield from self._stream(n, sample, screen, progress)
            return
        budget = ANALOG_ATTEMPTS * n if max_attempts is None else max_attempts
        found = attempts = b = 0
        while found < n and attempts < budget:
            rate = found / attempts if attempts else 1.0  # share of new molecules so far: sample enough for the rest
            count = min(self.batch_size, budget - attempts, max(1, math.ceil((n - found) / max(rate, 0.05))))
            for result in self._stream(count, lambda start, k, _, b=b: sample(start, k, b), screen, None):
                if found < n:  # samples past the n-th new molecule are not reported
                    found += result.state != "duplicate"
                    yield result
            attempts += count
            b += 1
            if progress is not None:
                progress(found, n)
        if found < n:
            log.warning("analogs of %s: %d new molecules of the %d asked for in %d samples (max_attempts)", smiles, found, n, attempts)

    def _edit(self, latents: Latents, count: int, strength: float, config: SamplingConfig | None, seed: int) -> Latents:
        """``count`` edits at ``strength`` of ``latents`` (one graph, edited ``count`` times, or ``count`` graphs, one
        edit each), sampled with ``config`` (None: the designer's defaults). A discrete prior (:data:`SPAN_EDITS`) keeps
        every token but one contiguous span (its length the strength's share of the graph's tokens, its place random)
        and draws the span again after the tokens before it; a set prior noises every token to ``strength`` of its
        schedule and denoises."""
        config = self._config(None, editing=True) if config is None else config
        if self.pipe.prior.config.architecture in SPAN_EDITS:
            generator = torch.Generator().manual_seed(seed)
            sizes, length = latents.mask.sum(1).tolist(), latents.mask.shape[1]
            if len(latents) == 1:
                keep = span_keep(int(sizes[0]), length, count, strength, generator)
            else:
                keep = torch.cat([span_keep(int(size), length, 1, strength, generator) for size in sizes])
            return self.pipe.sample_latents(count, config=config, seed=seed, start=latents, strength=1.0, keep=keep)
        return self.pipe.sample_latents(count, config=config, seed=seed, start=latents, strength=strength)

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

    # --- 3. scaffold decoration ---------------------------------------------------------------------------

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
        self._count(n)
        try:
            parsed = parse_core(core)
        except InvalidMoleculeError as exc:
            raise DesignInputError(str(exc)) from None
        template = self._encode(parsed.template, f"core {core!r} (as {parsed.template!r})", round_trip=False)[0]  # (T, d)
        if max(parsed.core_positions, default=-1) >= template.shape[0]:
            raise DesignInputError(f"core {core!r}: the model reads {template.shape[0]} atoms of its template {parsed.template!r}, fewer than the core's")
        if layout not in ("auto", *LAYOUTS):
            raise DesignInputError(f"layout={layout!r}: choose 'auto' or one of {LAYOUTS}")
        config = self._config(sampling, editing=True, steps=steps)
        sizes = self._decoration_sizes(template.shape[0], n, extra_atoms, seed, core)
        if layout == "auto":
            layout = self._best_layout(parsed, template, extra_atoms, seed, config)
        offsets = template_offsets(sizes, template.shape[0], layout)
        screen = self._screen(must_contain, must_avoid, filters, core=parsed, reference=parsed.template)
        adjust = self._core_constraint(parsed, offsets) if fix_core else None

        def sample(start: int, count: int, b: int) -> Latents:
            grid, keep = decoration_grid(template, parsed.core_positions, sizes[start : start + count], offsets[start : start + count])
            return self.pipe.sample_latents(count, config=config.replace(batch_size=count), seed=seed * _SEED_STRIDE + b, start=grid, keep=keep)

        yield from self._stream(n, sample, screen, progress, adjust)

    def _best_layout(self, core: Core, template: torch.Tensor, extra_atoms, seed: int, config: SamplingConfig, probe: int = 16) -> str:
        """The layout whose kept tokens alone (no constraint at decoding) retain the core most often."""
        sizes = self._decoration_sizes(template.shape[0], probe, extra_atoms, seed + 1, core.text)
        retained = {}
        for layout in LAYOUTS:
            grid, keep = decoration_grid(template, core.core_positions, sizes, template_offsets(sizes, template.shape[0], layout))
            latents = self.pipe.sample_latents(probe, config=config.replace(batch_size=probe), seed=seed + 1, start=grid, keep=keep)
            decoded = [m.smiles for m in self.pipe.decode(latents, decoding="valence") if m.smiles is not None]
            retained[layout] = sum(core.retained(parse_smiles(s)) for s in decoded)
        best = max(LAYOUTS, key=lambda k: retained[k])  # ties: the first, "first"
        log.info("core %s: kept tokens alone retain it %s of %d times; layout %r", core.text, retained, probe, best)
        return best

    def _core_constraint(self, core: Core, offsets: list[int]) -> CoreConstraint:
        domain = self.pipe.domain
        graph = domain.to_graph(core.template)
        hydrogens = domain.hydrogen_counts(graph)
        open_atoms = [] if core.attachment_points else [p for p in core.core_positions if hydrogens[p] > 0]
        return CoreConstraint(graph.x, graph.dense_edges(), core.core_positions, open_atoms, offsets)

    def _decoration_sizes(self, length: int, n: int, extra_atoms, seed: int, core: str) -> list[int]:
        config = self.pipe.prior.config
        room = config.max_nodes - length
        if room < 1:
            raise DesignInputError(f"core {core!r}: {length} atoms with its caps leaves no room under this model's max_nodes={config.max_nodes}")
        generator = torch.Generator().manual_seed(seed)
        if extra_atoms is None:  # the training size distribution above the template's size
            counts = torch.tensor(config.num_nodes_counts, dtype=torch.float64)[length + 1 :]
            if counts.sum() == 0:
                counts = torch.ones(room)
            return (torch.multinomial(counts, n, replacement=True, generator=generator) + length + 1).tolist()
        if isinstance(extra_atoms, int):
            low = high = extra_atoms
        elif isinstance(extra_atoms, (tuple, list)) and len(extra_atoms) == 2 and all(isinstance(v, int) for v in extra_atoms):
            low, high = extra_atoms
        else:
            raise DesignInputError(f"extra_atoms={extra_atoms!r}: a whole number or a (low, high) pair of them")
        if not 0 <= low <= high or high > room:
            raise DesignInputError(f"extra_atoms={extra_atoms!r}: must be between 0 and {room} for core {core!r}")
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
