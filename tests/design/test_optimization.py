"""The optimisation harness without a model: the oracle (budget, no repeated call, history, single or batch
objectives), the graph-GA search on RDKit alone, and objectives read from TOML or Python files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem

from molgen.design import DesignInputError, objectives
from molgen.design.optimization import Proposal, Search
from molgen.design.oracle import Budget, BudgetExhausted, History, Oracle

START = [
    "CCO",
    "c1ccccc1O",
    "CC(=O)Nc1ccc(O)cc1",
    "CCN(CC)CC",
    "O=C(O)c1ccccc1",
    "Cc1ccncc1",
    "CCOC(=O)C",
    "NCCc1ccccc1",
]


def _canonical(smiles: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"{smiles!r} does not parse")
    return Chem.MolToSmiles(mol)


def _atoms(smiles: list[str]) -> list[float]:
    return [float(Chem.MolFromSmiles(s).GetNumAtoms()) for s in smiles]


def test_batch_and_single_objectives_are_told_apart_at_the_first_call():
    batch = Oracle(_atoms, Budget(10))
    assert batch.score(["CCO", "CCCO"]) == [3.0, 4.0] and batch.batch is True
    single = Oracle(lambda s: float(len(s)), Budget(10))
    assert single.score(["CCO", "CCCO"]) == [3.0, 4.0] and single.batch is False
    arrays = Oracle(lambda smiles: np.array([1.0] * len(smiles)), Budget(10))
    assert arrays.score(["C"]) == [1.0] and arrays.batch is True
    with pytest.raises(
        DesignInputError, match="scores neither a list of SMILES nor one SMILES: called with a list it raised TypeError"
    ):
        Oracle(lambda s: {"score": 1}[s], Budget(10)).score(["CCO"])


def test_no_molecule_is_scored_twice_and_the_call_budget_holds():
    seen = []

    def counting(smiles):
        seen.extend(smiles)
        return _atoms(smiles)

    oracle = Oracle(counting, Budget(calls=3))
    assert oracle.score(["CCO", "CCO", "CCCO"], operators=["a", "a", "b"]) == [3.0, 3.0, 4.0]
    assert oracle.score(["CCO", "CCCCO", "CCCCCO"]) == [3.0, 5.0, None]  # the third new one is over budget
    assert seen == ["CCO", "CCCO", "CCCCO"] and oracle.used == 3
    assert [c.operator for c in oracle.history] == ["a", "b", ""]
    with pytest.raises(BudgetExhausted, match="budget of 3 objective calls used"):
        oracle.score(["CCCCCO"])
    assert oracle.score(["CCO"]) == [3.0]  # a known molecule costs nothing


def test_the_time_budget_stops_scoring():
    now = [0.0]
    oracle = Oracle(_atoms, Budget(calls=None, seconds=5), clock=lambda: now[0])
    oracle.score(["CCO"])
    now[0] = 6.0
    with pytest.raises(BudgetExhausted, match="time budget of 5 s used"):
        oracle.score(["CCCO"])


def test_a_failing_molecule_is_an_error_in_the_history_and_the_others_keep_their_scores():
    def picky(smiles):
        if any("N" in s for s in smiles):
            raise RuntimeError("no nitrogen, please")
        return _atoms(smiles)

    oracle = Oracle(picky, Budget(10))
    assert oracle.score(["CCO", "CCN", "CCC"]) == [3.0, None, 3.0]
    failed = oracle.history.calls[1]
    assert failed.smiles == "CCN" and failed.error == "objective raised RuntimeError: no nitrogen, please"
    wrong = Oracle(lambda smiles: [1.0], Budget(10))
    wrong.score(["C"])
    with pytest.raises(DesignInputError, match="returned 1 scores for 2 molecules"):
        wrong.score(["CC", "CCC"])


def test_history_streams_to_csv_and_resumes(tmp_path):
    path = tmp_path / "history.csv"
    first = Oracle(_atoms, Budget(10), History(path))
    first.score(["CCO", "CCCO"], parents=[None, "CCO"], operators=["start", "remask"], round=1)
    resumed = Oracle(_atoms, Budget(3), History(path))
    assert resumed.used == 2 and resumed.known["CCCO"].parent == "CCO" and resumed.known["CCCO"].round == 1
    assert resumed.score(["CCO", "CCCCO", "CCCCCO"]) == [3.0, 5.0, None]
    assert [c.index for c in History(path)] == [1, 2, 3]
    (tmp_path / "bad.csv").write_text("smiles,score\nCCO,1\n")
    with pytest.raises(DesignInputError, match="bad.csv.*expected the columns index, smiles"):
        History(tmp_path / "bad.csv")


def _near_15_atoms(smiles: list[str]) -> list[float]:
    return [-abs(n - 15.0) for n in _atoms(smiles)]


def test_graph_ga_search_improves_within_budget_and_never_repeats():
    oracle = Oracle(_near_15_atoms, Budget(200))
    search = Search(oracle, _canonical, strategy="graph-ga", n=20, population=50, seed=0)
    result = search.run([Proposal(_canonical(s), None, "start") for s in START], initial=len(START))
    smiles = [c.smiles for c in result.history]
    assert result.stopped == "budget of 200 objective calls used" and len(smiles) == len(set(smiles)) == 200
    assert all(Chem.MolFromSmiles(s) is not None for s in smiles)
    assert result.best[0].score > max(_near_15_atoms(START))
    assert all(c.parent for c in result.history.calls[len(START) :])
    rounds = [t["calls"] for t in result.trajectory]
    assert rounds == sorted(rounds) and rounds[-1] == 200


def test_a_search_keeps_its_results_when_the_objective_fails_later():
    calls = []

    def failing(smiles):
        calls.append(1)
        if len(calls) >= 3:
            raise ConnectionError("scoring service down")
        return _near_15_atoms(smiles)

    search = Search(Oracle(failing, Budget(500)), _canonical, strategy="graph-ga", n=10, population=20, seed=0)
    result = search.run([Proposal(_canonical(s), None, "start") for s in START], initial=len(START))
    assert result.stopped.startswith("stopped after") and "scoring service down" in result.stopped
    assert result.best and all(r.score is not None for r in result.best)


def test_strategies_that_need_a_model_say_so():
    with pytest.raises(DesignInputError, match="strategy 'mixed' needs a model"):
        Search(Oracle(_atoms, Budget(10)), _canonical, strategy="mixed")


def test_toml_objective_of_weighted_components(tmp_path):
    path = tmp_path / "objective.toml"
    path.write_text(
        """
aggregation = "geometric"
[[component]]
type = "qed"
weight = 2
[[component]]
type = "smarts"
pattern = "c1ccccc1"
[[component]]
type = "property"
property = "MW"
low = 100
high = 200
"""
    )
    score = objectives.load(path)
    phenol, ethanol = score(["c1ccccc1O", "CCO"])
    assert phenol > 0 and ethanol == 0.0  # geometric: failing the SMARTS fails the molecule
    qed = objectives.qed()(["c1ccccc1O"])[0]
    window = math.exp(-(((100 - 94.11) / 25) ** 2) / 2)
    assert phenol == pytest.approx((qed**2 * window) ** 0.25, rel=1e-3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[component]]\ntype = 'potency'\n", "type='potency': choose one of qed, sa"),
        ("aggregation = 'median'\n[[component]]\ntype = 'qed'\n", "aggregation='median'"),
        ("[[component]]\ntype = 'property'\nproperty = 'MW'\n", "give low, high or both"),
        ("[[component]]\ntype = 'smarts'\npattern = '[C'\n", "smarts component"),
        ("[[component]]\ntype = 'qed'\nweight = -1\n", "weight=-1"),
        ("[[component]]\ntype = 'similarity'\n", "similarity.*smiles"),
        ("components = 1\n", "unknown keys \\['components'\\]"),
        ("[[component]\n", "not valid TOML"),
    ],
)
def test_bad_toml_objectives_are_named(tmp_path, text, message):
    path = tmp_path / "objective.toml"
    path.write_text(text)
    with pytest.raises(DesignInputError, match=message):
        objectives.load(path)


def test_python_file_objective(tmp_path):
    path = tmp_path / "objective.py"
    path.write_text("def objective(smiles):\n    return len(smiles)\n")
    assert objectives.load(path)("CCO") == 3
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(DesignInputError, match="define a function named 'objective'"):
        objectives.load(tmp_path / "none.py")
    (tmp_path / "broken.py").write_text("raise SystemError('boom')\n")
    with pytest.raises(DesignInputError, match="raised SystemError: boom"):
        objectives.load(tmp_path / "broken.py")


def test_mixed_search_shifts_its_proposals_to_the_operator_that_finds_better_molecules():
    import torch

    from molgen.design.optimization import MIN_SHARE, ModelOperators

    def sample(count, seed):
        return [Proposal(_canonical(s), None, "sample", torch.zeros(2, 3)) for s in (START * count)[:count]]

    def remask(tokens, strength, seed):  # a model that only ever proposes tiny molecules: never near the top
        return [Proposal(_canonical("C" * (1 + (seed + k) % 3)), None, "remask", torch.zeros(2, 3)) for k in range(len(tokens))]

    model = ModelOperators(sample=sample, remask=remask, encode=lambda smiles: [torch.zeros(2, 3) for _ in smiles], max_nodes=8)
    search = Search(Oracle(_near_15_atoms, Budget(300)), _canonical, model=model, strategy="mixed", n=20, population=50, seed=0)
    result = search.run(None, initial=8)
    assert result.stopped == "budget of 300 objective calls used"
    shares = search._shares()
    assert MIN_SHARE <= shares["remask"] < 0.2 and shares["graph-ga"] > 0.8
