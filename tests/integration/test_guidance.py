"""molgen.guidance: validity guidance from the decoder (components, the energy, and its effect on sampling)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from molgen.graph import ValenceTable
from molgen.guidance import ValidityGuidance, components
from molgen.pipeline import MolgenPipeline

MODEL = Path(__file__).resolve().parents[2] / "checkpoints" / "moses"


def _adjacency(n: int, edges: list[tuple[int, int]]) -> torch.Tensor:
    adj = torch.zeros(n, n, dtype=torch.bool)
    for i, j in edges:
        adj[i, j] = adj[j, i] = True
    return adj


def test_components_label_each_fragment_by_its_smallest_node():
    adj = torch.stack([_adjacency(6, [(0, 3), (3, 5), (1, 2)]), _adjacency(6, [(0, 1), (1, 2), (2, 3)])])
    mask = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
    labels = components(adj, mask)
    assert labels[0].tolist() == [0, 1, 1, 0, 4, 0]
    assert labels[1].tolist() == [0, 0, 0, 0, 4, 5]  # padding keeps its own index


@pytest.fixture(scope="module")
def pipe() -> MolgenPipeline:
    return MolgenPipeline.from_pretrained(MODEL, device="cpu")


def _guidance(pipe: MolgenPipeline, scale: float = 0.1) -> ValidityGuidance:
    config = pipe.prior.config
    return ValidityGuidance(pipe.tokenizer, pipe.domain.valence_table(), torch.tensor(config.latent_mean), torch.tensor(config.latent_std), scale=scale)


def test_valence_table_of_the_molecule_domain(pipe):
    table = pipe.domain.valence_table()
    assert isinstance(table, ValenceTable)
    by_element = dict(zip(pipe.domain.vocab.node_values[0], (row[0] for row in table.capacity), strict=True))
    assert by_element[6] == 4 and by_element[7] == 3 and by_element[8] == 2 and by_element[9] == 1
    assert table.edge_orders == [0.0, 1.0, 2.0, 3.0]


def test_energy_flags_broken_graphs_and_not_real_molecules(pipe):
    guidance = _guidance(pipe)
    real = pipe.encode(["CCOc1ccc(C(=O)N2CCCC2)cc1", "Cc1ccccc1", "O=C(O)CCN"])
    _, broken = guidance.energy(real.z, real.mask.bool())
    assert not broken.any()
    latents = pipe.sample_latents(64, seed=3)
    decoded = pipe.decode(latents, decoding="raw")
    _, broken = guidance.energy(latents.z, latents.mask.bool())
    invalid = torch.tensor([m.state == "invalid" for m in decoded])
    # The energy's argmax check is RDKit's verdict without RDKit: they agree on nearly every graph.
    assert (broken == invalid).float().mean() >= 0.95, (broken.sum(), invalid.sum())
    assert invalid.any()


def test_a_guidance_step_lowers_the_energy(pipe):
    guidance = _guidance(pipe, scale=0.05)
    latents = pipe.sample_latents(32, seed=5)
    config = pipe.prior.config
    mean, std = torch.tensor(config.latent_mean), torch.tensor(config.latent_std)
    mask = latents.mask.bool()
    x = (latents.z - mean) / std * mask.unsqueeze(-1)
    before, _ = guidance.energy(x * std + mean, mask)
    after, _ = guidance.energy(guidance(x, mask) * std + mean, mask)
    assert after < before


@pytest.mark.parametrize(
    "autoguidance, scale",
    [(1.0, 0.1), (None, 0.2)],  # the model's defaults, at two validity guidance steps
)
def test_guided_sampling_is_far_more_often_valid_when_decoded_raw(pipe, autoguidance, scale):
    # at noise temperature 1.0 and with the Euler sampler, where README's figures were measured (the shipped
    # default, 0.8, leaves fewer invalid outputs to remove: 78.3% -> 95.3% valid at 0.2, 400 samples). The shipped
    # default sampler, DPM-Solver++ 2M, extrapolates from the previous step's prediction, which partly undoes
    # the guidance's edits between steps: here (seed 11) 69.5% -> 90.5% valid with it, 69.5% -> 93.5% with Euler.
    options = dict(seed=11, decoding="raw", properties=False, autoguidance=autoguidance, temperature=1.0, sampler="euler")
    guided = pipe.sample(200, validity_guidance=scale, **options)
    plain = pipe.sample(200, **options)  # default: off
    valid = {name: sum(m.state != "invalid" for m in run) / 200 for name, run in (("guided", guided), ("plain", plain))}
    # Most invalid outputs go: at most a third of unguided sampling's invalid share remains (a fixed margin over
    # unguided validity would become unreachable as the prior improves; 40% -> 11% with the shipped prior).
    assert valid["guided"] >= 0.85 and 1 - valid["guided"] <= (1 - valid["plain"]) / 3, valid
    assert len({m.smiles for m in guided if m.smiles}) >= 0.95 * sum(m.smiles is not None for m in guided)


def test_negative_guidance_is_refused(pipe):
    with pytest.raises(ValueError, match="validity_guidance=-1"):
        pipe.sample_latents(2, validity_guidance=-1)
