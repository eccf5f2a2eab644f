"""The masked diffusion prior: a bidirectional transformer over the codes of a quantised (FSQ) tokenizer that
predicts the tokens hidden behind a ``[MASK]`` id from all the others (absorbing-state discrete diffusion, as MaskGIT
and aMUSEd over VQ image tokens, MDLM and GenMol over text and fragments).

What the network predicts, and how its training inputs are made, in one place:

- Input: (B, N) ids, each a vocabulary id (``0 .. V-1``, ``config.vocabulary``) or ``mask_id = V``; the graph's size
  (its number of real tokens) and the optional property conditions. No time input: the share of ``[MASK]`` ids in
  the input says how far along the denoising is, and MDLM shows a masked diffusion denoiser need not be told it.
- Output: (B, N, V) logits of each position's code, over the vocabulary only (``[MASK]`` is never predicted).
- Training inputs (:func:`mask_tokens`): per graph a mask share r = cos(pi/2 * u), u ~ U(0, 1), the cosine schedule
  of MaskGIT that diffusers' ``AmusedScheduler`` (``masking_schedule="cosine"``) unmasks along at sampling time;
  ceil(r * n) of the graph's n real tokens are replaced by ``[MASK]``, chosen uniformly.

Network only: training is ``molgen.prior.training.MaskedDiffusionModule``, sampling ``molgen.sampling.masked``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.prior.blocks import CodeVocabulary, add_code_trunk, attention_inputs, condition_input
from molgen.prior.config import PriorConfig

__all__ = ["MASKING_SCHEDULE", "MaskedDiffusionPrior", "mask_tokens"]

MASKING_SCHEDULE = "cosine"
"""The masking schedule of training (:func:`mask_tokens`) and of sampling (``AmusedScheduler(masking_schedule=...)``)."""


def mask_tokens(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(B, N) real-token mask -> (B, N) bool, the tokens to hide: per graph a share r = cos(pi/2 * u) with u ~ U(0, 1)
    (:data:`MASKING_SCHEDULE`), ceil(r * n) of its n real tokens chosen uniformly (at least one, so every graph is
    scored); padding is never chosen."""
    mask = mask.bool()
    batch, n = mask.shape
    share = torch.cos(math.pi / 2 * torch.rand(batch, device=mask.device, generator=generator))  # (B,) in (0, 1]
    count = (share * mask.sum(1)).ceil().clamp(min=1)  # (B,)
    # rank the real tokens of each graph in a random order (padding last) and hide the first ``count``
    draws = torch.rand(batch, n, device=mask.device, generator=generator).masked_fill(~mask, 2.0)
    rank = draws.argsort(1).argsort(1)  # (B, N)
    return (rank < count[:, None]) & mask


class MaskedDiffusionPrior(CodeVocabulary, nn.Module):
    """Bidirectional transformer over vocabulary ids and ``[MASK]`` (``mask_id``): (B, N) ids -> (B, N, V) logits of
    each position's code given every unmasked token, before and after it, the graph's size and the optional
    conditions (normalised properties with a presence mask; none given: the unconditional prior, which
    classifier-free guidance mixes with the conditional one).

    Each token gets a learned embedding of its position in the tokenizer's canonical order (and, with
    ``relative_positions``, every attention layer a bias per token offset, :mod:`molgen.prior.blocks`); padding is
    masked out of attention. :meth:`ids` and :meth:`values` convert between ids and the tokenizer's latent values.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d, vocabulary = config.d_model, len(config.vocabulary)
        self.mask_id = vocabulary
        self.token_in = nn.Embedding(vocabulary + 1, d)  # the codes, then [MASK]
        add_code_trunk(self, config)
        self.head = nn.Linear(d, vocabulary)
        self.register_vocabulary(config.vocabulary)

    def forward(self, ids: Tensor, mask: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None) -> Tensor:
        """``ids`` (B, N) long, vocabulary ids or ``mask_id`` (any id at padding); ``mask`` (B, N) real tokens;
        ``properties`` (B, P) normalised values and ``property_mask`` (B, P) which are given (None: unconditional)
        -> (B, N, V) logits (padding rows are computed but mean nothing)."""
        batch, n = ids.shape
        if n > self.config.max_nodes:
            raise ValueError(f"{n} latent tokens, more than this prior's max_nodes={self.config.max_nodes}")
        mask = mask.bool()
        cond_in = condition_input(self.config, batch, properties, property_mask, ids.device)  # (B, 2P)
        c = F.silu(self.size(mask.sum(1)) + self.condition(cond_in))  # (B, d)
        h = self.token_in(ids * mask) + self.position.weight[:n].unsqueeze(0)  # (B, N, d); padding reads id 0
        attn_mask, offsets = attention_inputs(mask, self.config.relative_positions, h.dtype)  # no causal mask: bidirectional
        for block in self.blocks:
            h = block(h, c, attn_mask, offsets)
        return self.head(self.norm_out(h))  # (B, N, V)
