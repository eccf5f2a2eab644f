"""Sampling a discrete autoregressive prior: token after token in the canonical order, each drawn from the softmax
of the prior's logits given the tokens before it, then repair passes and, when asked, resampling of candidates.

1. Draw: one uniform number per token picks it by inverting the softmax's cumulative distribution (at the
   temperature, within the nucleus ``top_p``, with classifier-free guidance on the log-probabilities when
   conditioned, and property guidance by a prefix predictor when asked).
2. Repair: each graph whose argmax decoding breaks a valence or falls apart keeps its tokens before its first node
   at fault and draws the rest again (``repairs`` passes).
3. Resample: with ``candidates`` > 1, draw that many graphs per graph asked for and keep one of each group, scored by
   the judge (decoded candidates against the targets), the prefix predictor (their tokens against the targets) and
   the calibration (their ring counts against the data's).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from molgen.batch import batch_from_graphs
from molgen.calibration import Calibration
from molgen.decoding import Decoder
from molgen.judge.model import GraphJudge
from molgen.prior.discrete import DiscreteAutoregressivePrior
from molgen.prior.predictor import PropertyPredictor
from molgen.records import DecodedMolecule, Latents
from molgen.sampling.base import Condition, draw_sizes, guidance_rows, nucleus, take
from molgen.sampling.config import Edit, SamplingConfig
from molgen.sampling.guidance import PrefixPropertyGuidance, PropertyTargets, RepairSites, Resampling

__all__ = ["DiscreteSampler"]


class DiscreteSampler:
    """The sampler of a :class:`DiscreteAutoregressivePrior`, with the model's optional predictor, judge and calibration."""

    def __init__(
        self,
        prior: DiscreteAutoregressivePrior,
        decoder: Decoder,
        precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        predictor: PropertyPredictor | None = None,
        judge: GraphJudge | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.prior, self.decoder, self.precision = prior, decoder, precision
        self.predictor, self.judge, self.calibration = predictor, judge, calibration
        self.device = decoder.device
        config = prior.config
        self.mean = torch.tensor(config.latent_mean, device=self.device)
        self.std = torch.tensor(config.latent_std, device=self.device)

    # --- options ---------------------------------------------------------------------------------------

    def check(self, config: SamplingConfig, condition: Condition, editing: bool) -> None:
        if config.sampler is not None:
            raise ValueError(f"sampler={config.sampler!r}: a discrete prior draws each token from its softmax and uses no scheduler; leave it unset")
        self._steering(config, condition)
        self._resampling(config, condition, editing)

    def _steering(self, config: SamplingConfig, condition: Condition) -> PrefixPropertyGuidance | None:
        """Token-by-token property guidance, or None when ``property_guidance`` is 0; checked."""
        if config.property_guidance == 0:
            return None
        if self.predictor is None:
            raise ValueError("property_guidance needs a property predictor, and this model has none (no predictor/ in its directory): train one with `molgen train predictor`")
        if condition is None:
            raise ValueError("property_guidance steers toward property targets: give conditions (e.g. {'QED': 0.9})")
        targets = PropertyTargets(self.predictor, condition[0], condition[1], config.property_guidance)
        return PrefixPropertyGuidance(targets, (self.prior.codes - self.mean) / self.std)

    def _calibration(self, config: SamplingConfig, condition: Condition, editing: bool) -> Calibration | None:
        """The calibration to resample by: by default the model's, for unconditional sampling from scratch."""
        if config.calibrated is None:
            unconditional = condition is None and config.property_guidance <= 0
            return self.calibration if self.calibration is not None and not editing and unconditional else None
        if not config.calibrated:
            return None
        if self.calibration is None:
            raise ValueError("calibrated=True: this model has no calibration (calibration/ in its directory; make one with `molgen calibrate`)")
        if editing:
            raise ValueError("calibrated=True: calibration resamples whole graphs drawn from scratch, not edits of given latents (start=...); turn it off")
        return self.calibration

    def _resampling(self, config: SamplingConfig, condition: Condition, editing: bool) -> Resampling | None:
        """What chooses among candidates (see :class:`SamplingConfig`), or None for no resampling; checked. Edits keep
        their own tokens and sample as drawn: off by default, an error if asked for."""
        calibration = self._calibration(config, condition, editing)
        if editing:
            if config.candidates not in (None, 1):
                raise ValueError(f"candidates={config.candidates}: resampling whole graphs needs a prior drawing them from scratch, not edits of given latents (start=...); turn it off")
            return None
        steering = self._steering(config, condition)
        properties = None if steering is None else steering.inner
        targeted = condition is not None and bool(condition[1].any())  # some row gives a target
        judged = targeted and self.judge is not None
        if judged:
            properties = None  # the judge reads the decoded candidates, far more closely than the predictor reads their tokens
        elif properties is None and targeted and self.predictor is not None:
            # targets without token-by-token steering: candidates are still judged by the predictor's error to them
            properties = PropertyTargets(self.predictor, condition[0], condition[1], 1.0)
        candidates = config.candidates
        if candidates is None:
            candidates = max(
                1 if properties is None else self.predictor.config.default_candidates,
                1 if calibration is None else calibration.config.candidates,
                self.judge.config.default_candidates if judged else 1,
            )
        if candidates == 1:
            return None
        if properties is None and calibration is None and not judged:
            raise ValueError(
                f"candidates={candidates}: nothing to choose among the candidates by: needs conditions and a property predictor "
                "(predictor/ in the model directory) or judge (judge/), or a calibration (calibration/ in the model directory)"
            )
        selection = config.selection
        if selection is None:
            if judged:
                selection = self.judge.config.default_selection
            else:
                selection = self.predictor.config.default_selection if properties is not None else "draw"
        return Resampling(candidates, properties, calibrated=calibration is not None, selection=selection, judged=judged)

    # --- sampling --------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, count: int, config: SamplingConfig, generator: torch.Generator, condition: Condition, sizes: Tensor | None, edit: Edit | None) -> Latents:
        steer = self._steering(config, condition)
        resample = self._resampling(config, condition, editing=edit is not None)
        if resample is None:
            return self._draw(count, config, generator, condition, sizes, edit, steer)
        # ``candidates`` graphs per graph (each with its row's condition and size, if given), one kept of each group
        group = torch.arange(count).repeat_interleave(resample.candidates)
        drawn = self._draw(
            len(group), config, generator, take(condition, group), None if sizes is None else sizes[group], None,
            None if steer is None else steer.rows(group.to(self.device)),
        )  # fmt: skip
        mask = drawn.mask.to(self.device).bool()
        with self.precision():
            scores = resample.scores((drawn.z.to(self.device) - self.mean) / self.std * mask.unsqueeze(-1), mask)  # (B * K,)
        calibration = self._calibration(config, condition, editing=False)
        decoded = None
        if calibration is not None or resample.judged:
            decoded = self.decoder(drawn, batch_size=len(group), decoding=config.decoding)
        if calibration is not None:  # the candidates' own statistics, from their decoded graphs
            domain = self.decoder.domain
            statistics = [None if m.smiles is None else domain.statistics(m.smiles, calibration.properties) for m in decoded]
            scores = scores + torch.as_tensor(calibration.log_weights(statistics), dtype=scores.dtype, device=scores.device)
        if resample.judged:  # the judge's squared error (in training standard deviations) of each decoded candidate to its targets
            scores = scores - self._judge_errors(decoded, take(condition, group)).to(scores)
        kept = resample.pick(scores, generator)
        width = int(mask[kept].sum(1).max())
        chosen = None if decoded is None else [decoded[i] for i in kept.tolist()]
        return Latents(drawn.z[kept, :width], drawn.mask[kept, :width], chosen, None if decoded is None else config.decoding)

    def _draw(
        self, count: int, config: SamplingConfig, generator: torch.Generator, condition: Condition, sizes: Tensor | None, edit: Edit | None,
        steer: PrefixPropertyGuidance | None,
    ) -> Latents:  # fmt: skip
        """A batch drawn token by token, then repaired; an edit starts each token from ``edit``'s."""
        prior_config = self.prior.config
        x0 = keep = None
        if edit is None:
            sizes = draw_sizes(prior_config, count, generator) if sizes is None else sizes
            mask = (torch.arange(int(sizes.max()))[None, :] < sizes[:, None]).to(self.device)  # (B, N)
        else:
            mask = edit.start.mask.to(self.device).bool().expand(count, -1)
            x0 = ((edit.start.z.to(self.device) - self.mean) / self.std * mask.unsqueeze(-1)).expand(count, -1, -1)
            keep = None if edit.keep is None else edit.keep.to(self.device).bool().expand(count, -1)
        codes = _Codes(
            self.prior, mask.sum(1).to(self.device), condition, config.guidance_scale,
            prior_config.default_temperature if config.temperature is None else config.temperature, self.mean, self.std, self.precision,
            prior_config.default_top_p if config.top_p is None else config.top_p, steer,
        )  # fmt: skip
        # one uniform number per token picks it from the softmax; another decides whether an edit redraws it
        draws = torch.rand(2, count, mask.shape[1], generator=generator).to(self.device)
        x = codes.sample(draws, x0, 1.0 if edit is None else edit.strength, keep)
        repairs = prior_config.default_repairs if config.repairs is None else config.repairs
        x = self._repair(codes, x, mask, keep, repairs, generator)
        return Latents((x * self.std + self.mean) * mask.unsqueeze(-1), mask)

    def _repair(self, codes: _Codes, x: Tensor, mask: Tensor, keep: Tensor | None, passes: int, generator: torch.Generator) -> Tensor:
        """Up to ``passes`` repair passes over (B, N, d) normalised tokens ``x``; without a valence table in the domain
        there is nothing to check and ``x`` stays."""
        table = getattr(self.decoder.domain, "valence_table", None)
        if passes <= 0 or table is None:
            return x
        sites = RepairSites(self.decoder.tokenizer, table(), self.device)
        position = torch.arange(mask.shape[1], device=self.device)
        for _ in range(passes):
            faulty = sites(x * self.std + self.mean, mask)
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
            redo = replace(codes, sizes=codes.sizes[rows], condition=take(codes.condition, rows), steer=None if codes.steer is None else codes.steer.rows(rows))
            x = x.clone()
            x[rows] = redo.sample(draws, x[rows], 1.0, hold)
        return x

    @torch.no_grad()
    def _judge_errors(self, molecules: Sequence[DecodedMolecule], condition: tuple[Tensor, Tensor], batch: int = 512) -> Tensor:
        """(B,) the judge's squared error to each row's targets (normalised like the prior's conditions, over the given
        ones) of B decoded molecules; infinite for one that decoded to none."""
        targets, given = condition
        errors = torch.full((len(molecules),), math.inf)
        rows = [i for i, m in enumerate(molecules) if m.smiles is not None]
        domain = self.decoder.domain
        for lo in range(0, len(rows), batch):
            part = rows[lo : lo + batch]
            graphs = batch_from_graphs([domain.to_graph(molecules[i].smiles) for i in part]).to(self.device)
            index = torch.as_tensor(part, device=given.device)
            predicted = self.judge(graphs.x, graphs.adj, graphs.mask).float().to(given.device)  # (b, P)
            errors[part] = ((predicted - targets[index]).pow(2) * given[index]).sum(-1).cpu()
        return errors


@dataclass
class _Codes:
    """One batch drawn token after token; the causal transformer reads each token once (a key-value cache); at
    position j only the graphs with more than j nodes get a token."""

    prior: DiscreteAutoregressivePrior
    sizes: Tensor  # (B,) nodes per graph
    condition: Condition
    guidance_scale: float
    temperature: float
    mean: Tensor  # (d,) latent normalisation
    std: Tensor
    precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    top_p: float = 1.0  # nucleus: draw among the most likely codes that together hold this much probability
    steer: PrefixPropertyGuidance | None = None  # property guidance: changes each code's log-probability

    def sample(self, draws: Tensor, x0: Tensor | None = None, strength: float = 1.0, keep: Tensor | None = None) -> Tensor:
        """(B, N, d) normalised tokens. ``draws`` (2, B, N) uniform numbers: the first picks each token, the second
        makes an edit of ``x0`` (normalised) with ``strength`` < 1 keep each token of ``x0`` with probability
        1 - ``strength`` (the tokens after it are drawn knowing it); ``keep`` (B, N) bool: those tokens are ``x0``'s."""
        _, batch, n = draws.shape
        ids = torch.zeros(batch, n, dtype=torch.long, device=draws.device)
        start = None if x0 is None else self.prior.ids(x0 * self.std + self.mean)  # (B, N)
        held = torch.zeros(batch, n, dtype=torch.bool, device=draws.device)
        if start is not None and strength < 1:
            held = draws[1] >= strength
        if keep is not None:
            held = held | keep
        cache = self.prior.start_cache()
        guided, sizes, values, given = guidance_rows(self.sizes, self.condition, self.guidance_scale)
        real = torch.arange(n, device=draws.device)[None, :] < self.sizes[:, None]  # (B, N)
        if self.steer is not None:
            drawn_so_far = torch.zeros(batch, n, self.prior.codes.shape[1], device=draws.device)  # normalised, zero = not yet drawn
            codes = (self.prior.codes - self.mean) / self.std
        for j in range(n):
            previous = None if j == 0 else torch.cat([ids[:, j - 1]] * (2 if guided else 1))
            with self.precision():
                logits = self.prior.head(self.prior.context_step(previous, cache, sizes, values, given)).float()
            logp = logits.log_softmax(-1)
            if guided:  # classifier-free guidance on the log-probabilities
                logp = logp[batch:] + self.guidance_scale * (logp[:batch] - logp[batch:])
            if self.steer is not None:
                with self.precision():
                    logp = self.steer(logp, drawn_so_far, j, real)
            probs = (logp / self.temperature).softmax(-1)  # (B, V)
            if self.top_p < 1:
                probs = nucleus(probs, self.top_p)
            cumulative = probs.cumsum(-1)
            drawn = torch.searchsorted(cumulative, (draws[0, :, j] * cumulative[:, -1]).unsqueeze(-1)).squeeze(-1)
            drawn = drawn.clamp(max=probs.shape[-1] - 1)
            ids[:, j] = drawn if start is None else torch.where(held[:, j], start[:, j], drawn)
            if self.steer is not None:
                drawn_so_far[:, j] = codes[ids[:, j]] * real[:, j, None]
        return (self.prior.values(ids) - self.mean) / self.std * real.unsqueeze(-1)
