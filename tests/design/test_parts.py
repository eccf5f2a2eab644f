"""The design package's parts without a model: targets, constraints and filters, objectives, cores, latent
grids, strength calibration and the optimisation loop (with stand-in operations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rdkit import Chem

from molgen.checkpoint import load_domain
from molgen.design import DesignInputError, DesignResult, Filters, objectives, target_report
from molgen.design.chemistry import parse_core, penalized_logp
from molgen.design.constraints import Screen, compile_patterns
from molgen.design.editing import (
    CoreConstraint,
    KeptLabels,
    calibrate_strength,
    decoration_grid,
    interpolation_path,
    stack_tokens,
    template_offsets,
)
from molgen.design.optimization import Surrogate
from molgen.design.targets import parse_targets, sizes_for_weight

from ..conftest import REPO

NAMES = ["QED", "logP", "MW", "SA", "TPSA", "HBD", "HBA"]
MEANS = [0.8, 2.4, 307.0, 2.4, 65.0, 1.1, 4.5]
STDS = [0.1, 1.0, 40.0, 0.5, 15.0, 0.8, 1.3]


@pytest.fixture(scope="module")
def domain():
    return load_domain(REPO / "checkpoints" / "moses" / "domain.json")


# --- targets ------------------------------------------------------------------------------------------------


def test_targets_accept_values_and_ranges():
    targets = parse_targets({"QED": 0.9, "MW": (300, 400)}, NAMES, MEANS, STDS)
    assert targets["QED"].value == 0.9 and targets["MW"].value == 350
    assert targets["MW"].contains(320) and not targets["MW"].contains(401)
    assert targets["MW"].error(410) == pytest.approx(10) and targets["MW"].error(350) == 0


@pytest.mark.parametrize(
    "targets, message",
    [
        ({"potency": 5}, "'potency'.*conditioned on"),
        ({"MW": 5000}, "MW 5000 is far outside what this model was trained on"),
        ({"logP": (3, 1)}, r"logP range \[3, 1\] is empty"),
        ({"QED": 1.5}, r"QED 1.5 is impossible.*\[0, 1\]"),
        ({"SA": math.nan}, "not a finite number"),
        ({"HBD": "many"}, "expected a number"),
        ({"MW": (1, 2, 3)}, r"\(low, high\) pair"),
    ],
)
def test_bad_targets_name_the_target(targets, message):
    with pytest.raises(DesignInputError, match=message):
        parse_targets(targets, NAMES, MEANS, STDS)


def test_target_report_measures_mae_and_share_in_range():
    results = [DesignResult("C", "valid", properties={"MW": mw, "QED": 0.5}) for mw in (290, 350, 420)]
    results.append(DesignResult(None, "invalid", "bad"))
    report = target_report(results, parse_targets({"MW": (300, 400), "QED": 0.5}, NAMES))
    assert report["MW"]["n"] == 3
    assert report["MW"]["mae"] == pytest.approx((10 + 0 + 20) / 3)
    assert report["MW"]["in_range"] == pytest.approx(1 / 3)
    assert report["QED"] == {"mae": 0.0, "in_range": 1.0, "n": 3}


def test_sizes_for_weight_follow_the_target():
    counts = [0] * 10 + [100] * 21  # sizes 10-30 equally common; mean size 20
    light = sizes_for_weight(parse_targets({"MW": 150}, NAMES)["MW"], counts, mean_weight=300.0, std_weight=30.0)
    heavy = sizes_for_weight(parse_targets({"MW": (390, 420)}, NAMES)["MW"], counts, mean_weight=300.0, std_weight=30.0)
    assert light.sum() == pytest.approx(1) and light[:10].sum() == 0  # never a size the model has not seen
    assert light.argmax() == 10 and heavy.argmax() in (26, 27, 28)  # 15 g/mol per atom


# --- constraints and filters -----------------------------------------------------------------------------------


def test_bad_smarts_and_filters_name_the_input(domain):
    with pytest.raises(DesignInputError, match=r"must_avoid SMARTS '\[C' is not a valid SMARTS"):
        compile_patterns(["c1ccccc1", "[C"], "must_avoid")
    with pytest.raises(DesignInputError, match="filter window 'potency'"):
        Screen(domain, filters=Filters(windows={"potency": (1, 2)}))
    with pytest.raises(DesignInputError, match=r"filter window MW \[500, 200\] is empty"):
        Screen(domain, filters=Filters(windows={"MW": (500, 200)}))
    with pytest.raises(DesignInputError, match="sa_max=12"):
        Screen(domain, filters=Filters(sa_max=12))
    with pytest.raises(DesignInputError, match="min_similarity needs a molecule"):
        Screen(domain, filters=Filters(min_similarity=0.4))


def test_screen_reports_every_failed_constraint_and_marks_duplicates(domain):
    screen = Screen(
        domain, must_contain=["c1ccccc1"], must_avoid=["[Cl]"], filters=Filters(sa_max=1.0, windows={"MW": (0, 250)}, novelty=["CCO"]),
        reference="c1ccccc1CC(=O)O",
    )  # fmt: skip
    good = screen("OCc1ccccc1")
    assert good.state == "rejected" and good.reasons == [f"SA {good.properties['SA']:.2f} above the ceiling 1"]
    chlorinated = screen("Clc1ccc(CCCCCCCCCCC)cc1")
    assert any("forbidden substructure '[Cl]'" in r for r in chlorinated.reasons)
    assert any(r.startswith("MW") and "outside [0, 250]" in r for r in chlorinated.reasons)
    no_ring = screen("CCO")
    assert "missing required substructure 'c1ccccc1'" in no_ring.reasons and "in the training set (not novel)" in no_ring.reasons
    assert screen("OCc1ccccc1").state == "duplicate"
    invalid = screen(None, "decoded graph is not a valid molecule")
    assert invalid.state == "invalid" and invalid.error == "decoded graph is not a valid molecule"
    assert 0 < good.similarity < 1 and set(good.properties) == set(domain.property_names)


def test_alert_filter_rejects_pains(domain):
    catechol_imine = "Oc1ccc(C=NN)cc1O"  # catechol: a PAINS / Brenk alert
    passed = Screen(domain)(catechol_imine)
    assert passed.state == "valid" and passed.alerts
    rejected = Screen(domain, filters=Filters(alerts=True))(catechol_imine)
    assert rejected.state == "rejected" and rejected.reasons[0].startswith("structural alert")


# --- objectives --------------------------------------------------------------------------------------------------


def test_objectives_score_and_combine():
    smiles = ["CCO", "CC(=O)Nc1ccc(O)cc1"]
    q = objectives.qed()(smiles)
    assert all(0 < v < 1 for v in q)
    window = objectives.logp_window(1, 2)(smiles)
    assert window[1] == 1.0  # paracetamol: Crippen logP 1.35
    assert objectives.similarity("CCO")(smiles)[0] == 1.0
    both = objectives.weighted([(objectives.qed(), 1.0), (objectives.similarity("CCO"), 3.0)])(smiles)
    assert both[0] == pytest.approx((q[0] + 3.0) / 4)
    assert objectives.sigmoid(objectives.property_score("MW"), 100, 200)(["CCO"])[0] < 0.05
    assert set(objectives.NAMED) >= {"QED", "penalized logP", "similarity"}
    with pytest.raises(DesignInputError, match="similarity objective: invalid SMILES 'C1CC'"):
        objectives.similarity("C1CC")


def test_evaluate_isolates_failing_molecules():
    def picky(smiles):
        return [1.0 / (len(s) - 3) if "N" not in s else math.nan for s in smiles]  # 'CCC' divides by zero

    results = objectives.evaluate(picky, ["CCCC", "CCC", "CCN"])
    assert results[0] == (1.0, None)
    assert results[1][0] is None and "ZeroDivisionError" in results[1][1]
    assert results[2] == (None, "objective returned nan")
    assert objectives.evaluate(lambda s: ["high"] * len(s), ["C"]) == [(None, "objective returned 'high', not a number")]
    with pytest.raises(DesignInputError, match="returned 1 scores for 2 molecules"):
        objectives.evaluate(lambda s: [1.0], ["C", "CC"])


def test_penalized_logp_rewards_chains_and_punishes_large_rings():
    chain = penalized_logp(Chem.MolFromSmiles("CCCCCCCCCC"))
    assert chain > penalized_logp(Chem.MolFromSmiles("OCC(O)CO"))
    assert penalized_logp(Chem.MolFromSmiles("C1CCCCCCCCC1")) < chain


# --- cores -------------------------------------------------------------------------------------------------------


def test_cores_map_to_template_positions():
    core = parse_core("O=C(N[*:1])c1ccccc1")
    template = Chem.MolFromSmiles(core.template)
    assert core.attachment_points == 1 and len(core.core_positions) == 9 and len(core.free_positions) == 1
    assert template.GetAtomWithIdx(core.free_positions[0]).GetSymbol() == "C"  # the cap
    assert core.retained(Chem.MolFromSmiles("O=C(NCCO)c1ccccc1"))
    assert not core.retained(Chem.MolFromSmiles("O=C(N)c1ccccc1"))  # nothing on the attachment point
    assert not core.retained(Chem.MolFromSmiles("O=C(NC)c1ccccc1Cl"))  # substituted off the attachment point
    plain = parse_core("c1ccncc1")
    assert plain.attachment_points == 0 and plain.free_positions == () and plain.retained(Chem.MolFromSmiles("Clc1ccncc1"))


@pytest.mark.parametrize(
    "core, message",
    [
        ("C1CC", "unclosed ring"),
        ("[*:1]", "only attachment points"),
        ("[*:1]=CC", "attachment point 0 must be bonded to one core atom by a single bond"),
        ("FC(F)(F)C(F)(F)F", "no free valence"),
    ],
)
def test_bad_cores_name_the_core(core, message):
    from molgen.chem import InvalidMoleculeError

    with pytest.raises(InvalidMoleculeError, match=message):
        parse_core(core)


# --- latent grids -------------------------------------------------------------------------------------------------


def test_interpolation_path_runs_from_a_to_b():
    a, b = torch.randn(5, 3), torch.randn(7, 3)
    path = interpolation_path(a, b, 5)
    assert path.mask.sum(1).tolist() == [5, 6, 6, 6, 7]  # sizes rounded along the way
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[4], b)
    torch.testing.assert_close(path[2][:5], (a + b[:5]) / 2)


def test_decoration_grid_keeps_core_tokens_in_place():
    template = torch.randn(4, 3)
    start, keep = decoration_grid(template, [1, 2, 3], [6, 4])
    assert start.mask.sum(1).tolist() == [6, 4]
    torch.testing.assert_close(start.z[0, :4], template)
    assert keep[0].tolist() == [False, True, True, True, False, False]
    with pytest.raises(ValueError, match="at least the template's 4 atoms"):
        decoration_grid(template, [1], [3])


def test_template_can_sit_last():
    template = torch.randn(3, 2)
    sizes = [5, 3]
    offsets = template_offsets(sizes, 3, "last")
    start, keep = decoration_grid(template, [0, 2], sizes, offsets)
    assert offsets == [2, 0]
    torch.testing.assert_close(start.z[0, 2:5], template)
    assert keep[0].tolist() == [False, False, True, False, True] and keep[1, :3].tolist() == [True, False, True]
    with pytest.raises(ValueError, match="layout='middle'"):
        template_offsets(sizes, 3, "middle")


def test_core_constraint_follows_the_template_offset():
    labels = np.array([[0, 0, 3], [1, 0, 1]])  # C-N, the N is the core
    bonds = np.array([[0, 1], [1, 0]])
    nodes = [np.full((4, k), 1.0 / k) for k in (7, 1, 4)]
    edges = np.full((4, 4, 4), 0.25)
    fixed_nodes, fixed_edges = CoreConstraint(labels, bonds, core=[1], offsets=[0, 2])(1, nodes, edges)
    assert fixed_nodes[0][3].argmax() == 1 and fixed_nodes[0][1].max() < 1  # the core atom is at position 2 + 1
    assert fixed_edges[3, 2, 1] == 1.0 and fixed_edges[3, 0, 0] == 1.0 and fixed_edges[3, 1, 0] == 1.0


def test_core_constraint_fixes_core_atoms_and_bonds():
    labels = np.array([[0, 0, 3], [1, 0, 1], [0, 0, 0]])  # C-N(-C): core N and C at 1, 2; cap at 0
    bonds = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    rng = np.random.default_rng(0)
    nodes = [rng.dirichlet(np.ones(k), size=5) for k in (7, 1, 4)]
    edges = rng.dirichlet(np.ones(4), size=(5, 5))
    edges = (edges + edges.transpose(1, 0, 2)) / 2
    fixed_nodes, fixed_edges = CoreConstraint(labels, bonds, core=[1, 2])(0, nodes, edges)
    assert fixed_nodes[0][1].argmax() == 1 and fixed_nodes[0][1].max() == 1.0
    assert fixed_edges[1, 0, 1] == 1.0 and fixed_edges[1, 2, 1] == 1.0  # template bonds, to the cap too
    assert fixed_edges[2, 3, 0] == 1.0 and fixed_edges[4, 1, 0] == 1.0  # no new bonds to closed core atoms
    np.testing.assert_array_equal(fixed_edges[0, 3], edges[0, 3])  # the cap's other bonds are free
    opened = CoreConstraint(labels, bonds, core=[1, 2], open_atoms=[2])(0, nodes, edges)[1]
    np.testing.assert_array_equal(opened[2, 3], edges[2, 3])


def test_calibrate_strength_finds_the_similarity():
    strength = calibrate_strength(lambda s: 1 - s, 0.3, rounds=12)
    assert strength == pytest.approx(0.7, abs=0.01)
    assert calibrate_strength(lambda s: 1 - s, 0.999) == 0.02
    assert calibrate_strength(lambda s: 0.5, 0.1) == 1.0


# --- the latent surrogate ------------------------------------------------------------------------------------


def test_surrogate_learns_a_latent_score():
    latents = stack_tokens([torch.randn(5, 3) for _ in range(64)])
    target = latents.z[:, :, 0].sum(1) / 5
    predicted = Surrogate(scale=8, steps=300).fit(latents, target).predict(latents)
    assert np.corrcoef(predicted.numpy(), target.numpy())[0, 1] > 0.9


def test_span_keep_redraws_one_contiguous_span_per_row_and_never_keeps_padding():
    from molgen.design.editing import span_keep

    keep = span_keep(10, 12, 64, 0.3, torch.Generator().manual_seed(0))
    assert keep.shape == (64, 12) and not keep[:, 10:].any()
    redrawn = ~keep[:, :10]
    assert (redrawn.sum(1) == 3).all()  # round(0.3 x 10) tokens
    starts = redrawn.float().argmax(1)
    assert all(redrawn[r, s : s + 3].all() for r, s in enumerate(starts.tolist()))  # contiguous
    assert len(set(starts.tolist())) > 3  # at random places, every place possible
    assert set(starts.tolist()) <= set(range(8))
    assert (span_keep(10, 10, 4, 0.01, torch.Generator()).sum(1) == 9).all()  # at least one token
    assert not span_keep(10, 10, 4, 1.0, torch.Generator()).any()  # the whole graph
    with pytest.raises(ValueError, match="strength=0"):
        span_keep(10, 10, 4, 0, torch.Generator())


def test_kept_labels_pin_stereo_only_on_atoms_kept_with_all_their_neighbours():
    """Chain 0-1-2-3 with a chirality label on 1 and 2 and a geometry-carrying bond 1-2 (label 3 in group 2, with its
    plain twin label 2): with atom 3 redrawn, atom 1 (neighbours 0, 2 kept) is pinned, atom 2 (neighbour 3 redrawn) is
    not, and neither is bond 1-2; with everything kept the bond's group mass goes to label 3."""
    labels = np.array([[0, 0], [0, 1], [0, 2], [0, 0]])  # field 1: chirality labels (0 none)
    bonds = np.zeros((4, 4), dtype=np.int64)
    for i, j, label in [(0, 1, 1), (1, 2, 3), (2, 3, 1)]:
        bonds[i, j] = bonds[j, i] = label
    keeper = KeptLabels(
        labels, bonds, field=1, pinned_nodes=np.array([False, True, True]), pinned_edges=np.array([False, False, False, True]),
        edge_groups=np.array([-1, 1, 2, 2]),
    )  # fmt: skip
    keeper.keep, keeper.first = torch.tensor([[True, True, True, False], [True, True, True, True]]), 5
    nodes = [np.full((4, 1), 1.0), np.full((4, 3), 1 / 3)]
    edges = np.full((4, 4, 4), 0.25)
    pinned_nodes, pinned_edges = keeper(5, nodes, edges)
    assert pinned_nodes[1][1].tolist() == [0, 1, 0] and np.allclose(pinned_nodes[1][[0, 2, 3]], 1 / 3)
    assert np.array_equal(pinned_edges, edges)
    all_nodes, all_edges = keeper(6, nodes, edges)
    assert all_nodes[1][2].tolist() == [0, 0, 1]
    assert np.allclose(all_edges[1, 2], [0.25, 0.25, 0.0, 0.5]) and np.allclose(all_edges[2, 1], all_edges[1, 2])
    assert np.allclose(nodes[1], 1 / 3) and np.allclose(edges, 0.25)  # the inputs are not changed
