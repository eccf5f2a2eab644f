"""The user-facing object: load a model directory, sample molecules (or a scene model's scenes), turn items into
latent tokens and back. Items are the model's domain's: SMILES strings, or :class:`~molgen.scenes.scene.Scene`
objects (their JSON dicts and text are accepted as input too).

``MolgenPipeline`` composes the stages: load (:mod:`molgen.checkpoint`), encode (domain -> graph -> batch ->
tokenizer), sample (one :class:`~molgen.sampling.base.Sampler` per prior family, options in one
:class:`~molgen.sampling.config.SamplingConfig`) and decode (:class:`~molgen.decoding.Decoder`). No Lightning here.

>>> pipe = MolgenPipeline.from_pretrained()                         # doctest: +SKIP
>>> [m.smiles for m in pipe.sample(3, seed=0)]                      # doctest: +SKIP
>>> [m.smiles for m in pipe.decode(pipe.encode(["CCO", "c1ccccc1"]))]  # doctest: +SKIP
['CCO', 'c1ccccc1']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from molgen.batch import batch_from_graphs
from molgen.calibration import Calibration
from molgen.checkpoint import load_domain, load_judge, load_predictor, load_prior, load_tokenizer
from molgen.decoding import DECODINGS, Decoder, ScoreAdjuster
from molgen.device import DEFAULT_PRECISION, PRECISIONS, Precision, fast_bfloat16, resolve_device
from molgen.graph import DomainError
from molgen.judge.model import GraphJudge
from molgen.prior.discrete import DiscreteAutoregressivePrior
from molgen.prior.masked import MaskedDiffusionPrior
from molgen.prior.predictor import PropertyPredictor
from molgen.records import DecodedMolecule, Latents, Reconstruction
from molgen.retrieval import Neighbour, nearest
from molgen.sampling.base import Sampler, take
from molgen.sampling.config import Conditions, Edit, SamplingConfig, Sizes, condition_table, size_rows
from molgen.sampling.discrete import DiscreteSampler
from molgen.sampling.flow import FlowSampler
from molgen.sampling.masked import MaskedSampler
from molgen.tokenizer.model import GraphTokenizer

__all__ = [
    "DECODINGS", "DEFAULT_MODEL", "DEFAULT_PRECISION", "PRECISIONS", "DecodedMolecule", "Latents", "MolgenPipeline", "Reconstruction",
    "SamplingConfig", "fast_bfloat16",
]  # fmt: skip

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "checkpoints" / "moses"
"""The shipped model: MOSES chemistry, the FSQ tokenizer and the discrete autoregressive prior."""

log = logging.getLogger(__name__)


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """The random stream of batch ``batch`` of a sampling call with ``seed``: independent of every other batch, so a
    call can start at any batch and draw what one uninterrupted call would."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, batch]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class MolgenPipeline:
    """A graph domain + tokenizer + (optional) prior and its helpers, loaded from ``checkpoints/<name>/``."""

    def __init__(
        self,
        domain,
        tokenizer: GraphTokenizer,
        prior: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
        predictor: PropertyPredictor | None = None,
        precision: str = DEFAULT_PRECISION,
        calibration: Calibration | None = None,
        judge: GraphJudge | None = None,
    ) -> None:
        self.domain = domain
        self.device = resolve_device(device)
        self.precision = precision
        self.tokenizer = tokenizer.to(self.device).eval()
        self.prior = None if prior is None else prior.to(self.device).eval()
        if prior is not None and prior.config.latent_dim != tokenizer.config.latent_dim:
            raise ValueError(f"prior latent_dim={prior.config.latent_dim} does not match the tokenizer's {tokenizer.config.latent_dim}")
        helpers = {"predictor/": predictor, "judge/": judge, "calibration/": calibration}
        if any(v is not None for v in helpers.values()) and not isinstance(self.prior, DiscreteAutoregressivePrior):
            given = [k for k, v in helpers.items() if v is not None]
            raise ValueError(f"{', '.join(given)}: these choose among a discrete prior's samples; this model's prior is not discrete")
        if predictor is not None:
            predictor.config.check_fits(self.prior.config)
        if judge is not None:
            judge.config.check_fits(self.prior.config, tokenizer.config.node_vocab_sizes, tokenizer.config.edge_vocab_size)
        if calibration is not None:
            unknown = [name for name in calibration.properties if name not in getattr(domain, "statistic_names", ())]
            if unknown:
                raise ValueError(f"calibration over {unknown}: not statistics this model's domain computes ({list(getattr(domain, 'statistic_names', ()))})")
        self.predictor = None if predictor is None else predictor.to(self.device).eval()
        self.calibration = calibration
        # chooses among a discrete prior's candidates for a request with targets, by the properties it predicts of their
        # decoded graphs (None: the property predictor chooses, by their latents); settable, e.g. to None to compare
        self.judge = None if judge is None else judge.to(self.device).eval()
        self.decoder = Decoder(domain, self.tokenizer, self.device)

    @property
    def precision(self) -> str:
        """How the prior-side networks run while sampling, one of :data:`PRECISIONS` (settable)."""
        return self._precision.name

    @precision.setter
    def precision(self, value: str) -> None:
        self._precision = Precision(value, self.device)

    @property
    def network_dtype(self) -> torch.dtype:
        """The dtype the prior-side networks compute their matrix products in (what :attr:`precision` resolved to)."""
        return self._precision.dtype

    @property
    def sampler(self) -> Sampler:
        """The sampler of this model's prior family (made anew each time: it reads the current judge, precision, ...)."""
        prior = self._require_prior()
        if isinstance(prior, DiscreteAutoregressivePrior):
            return DiscreteSampler(prior, self.decoder, self._precision, self.predictor, self.judge, self.calibration)
        if isinstance(prior, MaskedDiffusionPrior):
            return MaskedSampler(prior, self.device, self._precision)
        return FlowSampler(prior, self.device, self._precision)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "auto", precision: str = DEFAULT_PRECISION) -> MolgenPipeline:
        """Load a model directory (default: the shipped :data:`DEFAULT_MODEL`): ``domain.json``, ``tokenizer/`` and,
        if present, ``prior/``, ``predictor/`` (a prefix property predictor), ``judge/`` (a graph network predicting
        the properties of decoded candidates, :mod:`molgen.judge`) and ``calibration/`` (:mod:`molgen.calibration`; a
        warning if it was measured on other prior weights). ``precision``: see :data:`PRECISIONS`."""
        path = DEFAULT_MODEL if path is None else Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model directory")
        device = resolve_device(device)

        def part(name: str, load):
            return load(path / name, device=device) if (path / name / "config.json").exists() else None

        prior = part("prior", load_prior)
        calibration = None
        if (path / "calibration" / "config.json").exists():
            calibration = Calibration.load(path / "calibration")
            if prior is not None:
                calibration.check_prior(path / "prior" / "model.safetensors")
        tokenizer = load_tokenizer(path / "tokenizer", device=device)
        return cls(load_domain(path / "domain.json"), tokenizer, prior, device, part("predictor", load_predictor), precision, calibration, part("judge", load_judge))

    # --- sampling: prior -> latents -> molecules -----------------------------------------------------

    def sample(self, n: int, config: SamplingConfig | None = None, *, seed: int = 0, conditions: Conditions | None = None, num_nodes: Sizes | None = None, **options) -> list[DecodedMolecule]:
        """Sample ``n`` molecules; one record per sample, in order, invalid ones included (see :meth:`sample_iter`)."""
        return list(self.sample_iter(n, config, seed=seed, conditions=conditions, num_nodes=num_nodes, **options))

    def sample_iter(
        self,
        n: int,
        config: SamplingConfig | None = None,
        *,
        seed: int = 0,
        conditions: Conditions | None = None,
        num_nodes: Sizes | None = None,
        first: int = 0,
        seen: Iterable[str] = (),
        **options,
    ) -> Iterator[DecodedMolecule]:
        """Sample ``n`` molecules, yielded batch by batch (for streaming to disk and progress bars).

        ``config``: how to sample (:class:`SamplingConfig`; keyword ``options`` change some of its fields, e.g.
        ``temperature=0.8``); ``conditions``: property targets, one mapping for all samples or one per sample;
        ``num_nodes``: every graph's size, or one per sample (default: drawn from the training distribution). The same
        ``seed`` and ``batch_size`` give the same molecules: each batch has its own random stream, so ``first`` > 0
        resumes an interrupted run, yielding samples ``first .. n - 1`` exactly as one uninterrupted run would
        (the batches before it are not drawn), with ``seen`` the SMILES of the molecules it had produced (so that
        repeats are still marked ``duplicate``). Everything is checked when this is called, before the first molecule
        is asked for.
        """
        config, table, rows = self._request(n, config, options, conditions, num_nodes, editing=False)
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= n:
            raise ValueError(f"first={first!r}: must be a whole number between 0 and n={n}")
        return self._stream(n, config, seed, table, rows, first, set(seen))

    def _stream(self, n: int, config: SamplingConfig, seed: int, table, rows, first: int, seen: set[str]) -> Iterator[DecodedMolecule]:
        sampler = self.sampler
        batch = config.batch_size
        for start in range(first - first % batch, n, batch):
            count = min(batch, n - start)
            part = slice(start, start + count)
            latents = sampler.sample(count, config, batch_generator(seed, start // batch), take(table, part), take(rows, part), None)
            decoded = latents.decoded if latents.decoded is not None and latents.decoding == config.decoding else None
            molecules = decoded if decoded is not None else self.decode(latents, batch_size=count, decoding=config.decoding)
            for molecule in molecules[max(first - start, 0) :]:
                if molecule.smiles is not None:
                    if molecule.smiles in seen:
                        molecule.state = "duplicate"
                    seen.add(molecule.smiles)
                    if config.properties:
                        molecule.properties = self.domain.properties(molecule.smiles)
                yield molecule

    def sample_latents(
        self,
        n: int,
        config: SamplingConfig | None = None,
        *,
        seed: int = 0,
        conditions: Conditions | None = None,
        num_nodes: Sizes | None = None,
        start: Latents | None = None,
        strength: float = 1.0,
        keep: Tensor | None = None,
        **options,
    ) -> Latents:
        """Latent tokens of ``n`` graphs from the prior (arguments as :meth:`sample_iter`).

        Editing given latents (analogs, inpainting): ``start`` (``len(start)`` is ``n`` or 1, broadcast), e.g. from
        :meth:`encode`; the graphs keep their sizes. ``strength`` < 1 redraws that share (a discrete prior keeps each
        token with probability 1 - strength; a set prior noises the start to that share of its schedule; a masked prior
        masks that share of the tokens, chosen at random, and draws them again).
        ``keep`` (n or 1, N) bool: tokens held exactly while the prior fills in the others around them.
        """
        if start is not None and len(start) not in (1, n):
            raise ValueError(f"start holds {len(start)} graphs; give 1 (broadcast) or n={n}")
        if keep is not None and start is None:
            raise ValueError("keep needs start: the latents whose tokens are kept")
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 < strength <= 1:
            raise ValueError(f"strength={strength!r}: must be in (0, 1] (1 = redraw everything)")
        config, table, rows = self._request(n, config, options, conditions, num_nodes, editing=start is not None)
        if start is not None:
            rows = None  # edits keep the sizes of ``start``
        sampler = self.sampler
        chunks = []
        for k in range(0, n, config.batch_size):
            count = min(config.batch_size, n - k)
            edit = None if start is None else Edit(start.rows(k, count), strength, None if keep is None else (keep if len(keep) == 1 else keep[k : k + count]))
            generator = batch_generator(seed, k // config.batch_size)
            chunks.append(sampler.sample(count, config, generator, take(table, slice(k, k + count)), take(rows, slice(k, k + count)), edit))
        return Latents.concat(chunks)

    def _request(self, n: int, config: SamplingConfig | None, options: dict, conditions, num_nodes, editing: bool):
        """The request's config (with ``options`` applied), condition table and size rows, all checked."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r}: the number of samples must be a whole number >= 1")
        config = (config or SamplingConfig()).replace(**options)
        prior = self._require_prior()
        table = condition_table(prior.config, conditions, n, self.device)
        rows = size_rows(prior.config, num_nodes, n)
        self.sampler.check(config, table, editing)
        return config, table, rows

    def _require_prior(self) -> torch.nn.Module:
        if self.prior is None:
            raise ValueError("this model has no prior (no prior/ in its directory): it can encode and decode, not sample")
        return self.prior

    # --- SMILES -> latents ---------------------------------------------------------------------------

    def encode(self, smiles: Sequence[str], batch_size: int = 512) -> Latents:
        """Latent tokens of each SMILES (all must be valid and inside the vocabulary; errors name the SMILES)."""
        graphs = [self._graph(s) for s in smiles]
        if not graphs:
            raise ValueError("nothing to encode: no SMILES given")
        return Latents.concat([self._encode_graphs(graphs[k : k + batch_size]) for k in range(0, len(graphs), batch_size)])

    def _graph(self, item):
        graph = self.domain.to_graph(item)
        if graph.num_nodes > self.tokenizer.config.max_nodes:
            noun, nodes = getattr(self.domain, "item_noun", "item"), getattr(self.domain, "node_noun", "nodes")
            raise DomainError(f"{noun} {item!r}: {graph.num_nodes} {nodes}, more than this tokenizer's max_nodes={self.tokenizer.config.max_nodes}")
        return graph

    @torch.no_grad()
    def _encode_graphs(self, graphs) -> Latents:
        batch = batch_from_graphs(graphs).to(self.device)
        return Latents(self.tokenizer.encode(batch), batch.mask)

    # --- latents -> SMILES ---------------------------------------------------------------------------

    def decode(
        self, latents: Latents, batch_size: int = 512, decoding: str = "raw", connected: bool | None = None, adjust: ScoreAdjuster | None = None
    ) -> list[DecodedMolecule]:
        """Decode latent tokens to domain items (molecules: SMILES; scenes: :class:`~molgen.scenes.scene.Scene`); invalid
        graphs are kept, with the reason (see :class:`Decoder`; ``connected`` None: as the domain says)."""
        return self.decoder(latents, batch_size, decoding, connected, adjust)

    # --- retrieval: nearest items by latent similarity -----------------------------------------------

    def nearest(self, queries: Sequence | Latents, candidates: Sequence | Latents, k: int = 5, metric: str = "set") -> list[list[Neighbour]]:
        """The ``k`` candidates nearest each query by the distance between their latent tokens (:mod:`molgen.retrieval`:
        ``set``, an optimal matching of the tokens, or ``mean``, mean-pooled tokens), nearest first. Queries and
        candidates are items (SMILES, scenes) or their :class:`Latents`; each :class:`~molgen.retrieval.Neighbour`
        carries the candidate item when items were given."""
        items = None if isinstance(candidates, Latents) else list(candidates)
        query_latents = queries if isinstance(queries, Latents) else self.encode(list(queries))
        candidate_latents = candidates if isinstance(candidates, Latents) else self.encode(items)
        hits = nearest(query_latents, candidate_latents, k, metric)
        if items is None:
            return hits
        return [[Neighbour(h.index, h.distance, items[h.index]) for h in row] for row in hits]

    # --- round trip ----------------------------------------------------------------------------------

    def reconstruct(self, smiles: Sequence[str], batch_size: int = 512, decoding: str = "verified") -> Iterator[Reconstruction]:
        """SMILES -> latents -> SMILES for each input, yielded in order. Bad inputs are reported, not raised.

        ``decoding`` as in :meth:`decode`: ``verified`` (default: the argmax checked by re-encoding, and the nearest
        graph that gives the tokens back where it does not), ``raw`` (the decoder's argmax alone) or ``valence`` (the
        domain's decoding from the decoder's probabilities, what sampling uses by default)."""
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
                decoded = self.decode(self._encode_graphs([g for _, g in graphs]), decoding=decoding, connected=False)
                for (n, _), c, d in zip(graphs, canon, decoded, strict=True):
                    results[n] = Reconstruction(chunk[n], c, d.smiles, d.smiles == c, d.error)
            yield from results
