"""The discrete autoregressive prior: a causal transformer over the codes of a quantised (FSQ) tokenizer. Each
token is one of the ``config.vocabulary`` code vectors seen in training, and the head gives the logits of the next
one given the tokens before it in the canonical (SMILES) order, as a language model writes the next word: trained
with cross entropy, drawn from a softmax, so every drawn token is one the decoder was trained on.

Network only: training is ``molgen.prior.training.DiscreteAutoregressiveModule``, sampling
``molgen.sampling.discrete``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgen.prior.blocks import CodeVocabulary, DiTBlock, add_code_trunk, condition_input
from molgen.prior.config import PriorConfig

__all__ = ["DiscreteAutoregressivePrior", "TokenCache"]


class TokenCache:
    """Keys and values of every block for the tokens read so far (incremental decoding, one token per call)."""

    def __init__(self, blocks: int) -> None:
        self.keys: list[Tensor | None] = [None] * blocks
        self.values: list[Tensor | None] = [None] * blocks
        self.length = 0

    def extend(self, index: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.keys[index] is not None:
            k, v = torch.cat([self.keys[index], k], dim=2), torch.cat([self.values[index], v], dim=2)
        self.keys[index], self.values[index] = k, v
        return k, v


def _block_step(block: DiTBlock, h: Tensor, c: Tensor, cache: TokenCache, index: int, bias: Tensor | None) -> Tensor:
    """One :class:`DiTBlock` on the newest token only, attending to the cached keys and values before it (the
    causal attention of :meth:`DiscreteAutoregressivePrior.context`, computed once per token)."""
    batch, _, d = h.shape
    shift1, scale1, gate1, shift2, scale2, gate2 = block.modulation(c).unsqueeze(1).chunk(6, dim=-1)
    a = block.norm1(h) * (1 + scale1) + shift1
    q, k, v = block.qkv(a).view(batch, 1, 3, block.n_heads, d // block.n_heads).permute(2, 0, 3, 1, 4)  # (B, H, 1, dh)
    k, v = cache.extend(index, k, v)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
    h = h + gate1 * block.proj(a.transpose(1, 2).reshape(batch, 1, d))
    return h + gate2 * block.mlp(block.norm2(h) * (1 + scale2) + shift2)


class _CausalTokens(nn.Module):
    """A causal transformer over a graph's tokens (shifted right by a learned start token), told the graph's number
    of nodes and the optional property conditions (with a presence mask, for classifier-free guidance). The subclass
    says how a token is read (:meth:`embed`) and drawn (its head)."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.start = nn.Parameter(torch.zeros(d))
        add_code_trunk(self, config)

    def embed(self, tokens: Tensor) -> Tensor:
        """(..., token) -> (..., d_model): how the transformer reads a token."""
        raise NotImplementedError

    def _conditioning(self, sizes: Tensor, properties: Tensor | None, property_mask: Tensor | None) -> Tensor:
        cond_in = condition_input(self.config, sizes.shape[0], properties, property_mask, sizes.device)  # (B, 2P)
        return F.silu(self.size(sizes) + self.condition(cond_in))  # (B, d)

    def context(self, z: Tensor, sizes: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None) -> Tensor:
        """``z`` (B, L, ...) tokens so far (L <= max_nodes; the last one is not read), ``sizes`` (B,) each
        graph's number of nodes -> (B, L, d_model): position j has read tokens 0..j-1 only."""
        batch, length = z.shape[:2]
        if length > self.config.max_nodes:
            raise ValueError(f"{length} latent tokens, more than this prior's max_nodes={self.config.max_nodes}")
        c = self._conditioning(sizes, properties, property_mask)
        shifted = torch.cat([self.start.expand(batch, 1, -1), self.embed(z[:, :-1])], dim=1)  # (B, L, d)
        h = shifted + self.position.weight[:length].unsqueeze(0)
        causal = torch.full((length, length), float("-inf"), device=z.device, dtype=h.dtype).triu(1)[None, None]  # (1, 1, L, L)
        k = self.config.relative_positions
        position = torch.arange(length, device=z.device)
        offsets = (position[None, :] - position[:, None]).clamp(-k, k) + k
        for block in self.blocks:
            h = block(h, c, causal, offsets)
        return self.norm_out(h)

    def start_cache(self) -> TokenCache:
        """An empty cache for :meth:`context_step`."""
        return TokenCache(len(self.blocks))

    def context_step(
        self, previous: Tensor | None, cache: TokenCache, sizes: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None
    ) -> Tensor:
        """Incremental :meth:`context`: ``previous`` (B, ...) the token drawn last (None at the first
        position) -> (B, d_model) the context of the next position; ``cache`` holds what earlier calls read. Each
        token is read once, so drawing N tokens costs N single-token passes instead of N growing prefixes."""
        j = cache.length
        if j >= self.config.max_nodes:
            raise ValueError(f"position {j} is past this prior's max_nodes={self.config.max_nodes}")
        c = self._conditioning(sizes, properties, property_mask)
        h = self.start.expand(sizes.shape[0], 1, -1) if previous is None else self.embed(previous).unsqueeze(1)
        h = h + self.position.weight[j]
        bias = None
        k = self.config.relative_positions
        if k:
            offsets = (torch.arange(j + 1, device=h.device) - j).clamp(-k, k) + k  # key position - query position
        for index, block in enumerate(self.blocks):
            if k:
                bias = block.offset_bias(offsets).T[None, :, None, :]  # (1, H, 1, j + 1)
            h = _block_step(block, h, c, cache, index, bias)
        cache.length += 1
        return self.norm_out(h)[:, 0]


class DiscreteAutoregressivePrior(CodeVocabulary, _CausalTokens):
    """Causal transformer over the codes of a quantised tokenizer (FSQ): each token is one of the
    ``config.vocabulary`` code vectors seen in training, and the head gives the logits of the next one, as a
    language model writes the next word (a cross-entropy objective, no flow per token).

    Tokens enter and leave as vocabulary ids (B, L) long; :meth:`ids` and :meth:`values` convert between ids and
    the tokenizer's latent values.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__(config)
        self.token_in = nn.Embedding(len(config.vocabulary), config.d_model)
        self.head = nn.Linear(config.d_model, len(config.vocabulary))
        self.register_vocabulary(config.vocabulary)

    def embed(self, tokens: Tensor) -> Tensor:
        return self.token_in(tokens)

    def log_likelihood(self, z: Tensor, mask: Tensor, properties: Tensor | None = None, property_mask: Tensor | None = None) -> Tensor:
        """(B,) log-probability in nats of each graph's tokens given its number of nodes and the optional
        conditions (normalised properties and their presence mask): the exact likelihood a language model
        gives a sentence. ``z`` (B, N, d_lat) latent values (unnormalised, as the tokenizer gives them), ``mask`` (B, N)."""
        mask = mask.bool()
        ids = self.ids(z) * mask
        context = self.context(ids, mask.sum(1), properties, property_mask)
        logp = self.head(context).float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # (B, N)
        return (logp * mask).sum(1)
