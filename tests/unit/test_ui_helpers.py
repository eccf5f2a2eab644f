"""The web UI's helpers without a browser: form parsing, result tables and files, depictions, and how a request
runs (deadline, cancellation)."""

from __future__ import annotations

import asyncio
import base64
import csv
import re
import threading

import pytest

from molgen.design import DesignResult
from molgen.ui import depict, results
from molgen.ui.forms import (
    MAX_SEED,
    FormError,
    check_count,
    parse_atom_count,
    parse_auth,
    parse_lines,
    parse_optional_float,
    parse_sa_ceiling,
    parse_seed,
    parse_target,
    parse_targets,
)
from molgen.ui.jobs import CANCELLED, Deadline, Interrupted, Runner, collect, stoppable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.9", 0.9),
        (" 350 ", 350.0),
        ("300-400", (300.0, 400.0)),
        ("300 .. 400", (300.0, 400.0)),
        ("-1 to 3", (-1.0, 3.0)),
        ("-2--0.5", (-2.0, -0.5)),
        ("1e2, 2e2", (100.0, 200.0)),
        ("", None),
        (None, None),
    ],
)
def test_parse_target(text, expected):
    assert parse_target("logP", text) == expected


@pytest.mark.parametrize(("text", "fragment"), [("high", "write a value"), ("400-300", "low end"), ("1-2-3", "write a value")])
def test_bad_target_names_the_property(text, fragment):
    with pytest.raises(FormError, match="MW target") as info:
        parse_target("MW", text)
    assert fragment in str(info.value)


def test_parse_targets_keeps_filled_fields_only():
    assert parse_targets({"QED": "0.8", "MW": "", "logP": "1-3"}) == {"QED": 0.8, "logP": (1.0, 3.0)}


def test_counts_and_caps():
    assert check_count("n", 5.0, 1, 10) == 5
    with pytest.raises(FormError, match="at most 10 per request"):
        check_count("n", 11, 1, 10)
    with pytest.raises(FormError, match="at least 1"):
        check_count("n", 0, 1, 10)
    with pytest.raises(FormError, match="whole number"):
        check_count("n", 2.5, 1, 10)
    with pytest.raises(FormError, match="enter a whole number"):
        check_count("n", None, 1, 10)


def test_small_fields():
    assert parse_atom_count("atoms", "5") == 5
    assert parse_atom_count("atoms", "3-8") == (3, 8)
    assert parse_atom_count("atoms", "") is None
    with pytest.raises(FormError, match="whole number of atoms"):
        parse_atom_count("atoms", "2.5")
    assert parse_lines("c1ccccc1\n\n [N,O] \n") == ["c1ccccc1", "[N,O]"]
    assert parse_optional_float("SA", "") is None and parse_optional_float("SA", 4) == 4.0
    with pytest.raises(FormError, match="SA 'x'"):
        parse_optional_float("SA", "x")
    assert parse_auth("me:pw:x") == ("me", "pw:x") and parse_auth(None) is None
    with pytest.raises(FormError, match="user:password"):
        parse_auth("nopassword")


@pytest.mark.parametrize("untouched", [None, "", "  "])
def test_an_empty_sa_ceiling_is_no_ceiling(untouched):
    assert parse_sa_ceiling(untouched) is None
    assert parse_sa_ceiling("4.5") == 4.5 and parse_sa_ceiling(6) == 6.0


@pytest.mark.parametrize("value", [0, "0", "0.5", "11", "-3"])
def test_an_sa_ceiling_outside_the_scale_is_a_message_not_a_filter_that_rejects_everything(value):
    with pytest.raises(FormError, match=r"SA ceiling .*: SA scores run from 1 \(easy\) to 10 \(hard\)"):
        parse_sa_ceiling(value)


def test_seeds_are_whole_numbers_in_range():
    assert parse_seed(None) == 0 and parse_seed("") == 0 and parse_seed(7.0) == 7 and parse_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, 2.5, 1e20, "x", float("inf")):
        with pytest.raises(FormError, match="seed"):
            parse_seed(bad)


def test_long_text_in_a_number_field_is_refused_before_any_pattern_runs():
    digits = "1" * 100_000  # a target field's pattern backtracks quadratically on this: it must never see it
    with pytest.raises(FormError, match=r"MW target '1{20}'\.\.\. \(100,001 characters\)"):
        parse_target("MW", digits + "x")
    with pytest.raises(FormError, match="100,001 characters"):
        parse_optional_float("SA ceiling", digits + "x")
    with pytest.raises(FormError, match="not a finite number"):
        check_count("n", "inf", 1, 10)


# --- how a request runs: its deadline and its Cancel button ------------------------------------------------


class Clock:
    """A clock a test moves by hand: deadlines in these tests never depend on how fast the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_passes_at_its_time_or_when_cancelled():
    clock = Clock()
    deadline = Deadline(10, clock)
    assert deadline.reason() is None
    clock.now = 10
    assert deadline.reason() == "the 10 s deadline of a request on this server passed"
    never = Deadline(None, clock)
    clock.now = 1e9
    assert never.reason() is None
    never.cancel()
    assert never.cancelled and never.reason() == CANCELLED


def test_collect_keeps_the_results_made_before_the_deadline_and_stops_the_stream():
    clock = Clock()
    closed = []

    def stream():
        try:
            for k in range(100):
                clock.now = k  # each result takes a second
                yield k
        finally:
            closed.append(True)

    kept, why = collect(stream(), Deadline(5, clock))
    assert kept == [0, 1, 2, 3, 4, 5] and "5 s deadline" in why
    assert closed == [True]  # the generator was closed there: it samples no further batch
    assert collect(iter(range(3)), Deadline(None)) == ([0, 1, 2], None)


def test_a_stoppable_objective_interrupts_an_optimisation_at_its_deadline():
    clock = Clock()
    deadline = Deadline(1, clock)

    def qed(smiles: list[str]) -> list[float]:
        return [0.5] * len(smiles)

    checked = stoppable(qed, deadline)
    assert checked(["CCO", "CCN"]) == [0.5, 0.5] and checked.__name__ == "qed"
    clock.now = 1
    with pytest.raises(Interrupted, match="deadline"):
        checked(["CCO"])
    assert issubclass(Interrupted, KeyboardInterrupt)  # what Designer.optimize keeps its molecules on


def test_cancelling_a_running_request_stops_its_work_at_the_next_result():
    """The Cancel button makes Gradio cancel the coroutine awaiting the work; the work, in its own thread, sees the
    cancelled deadline at its next result and stops there (synchronised by events, not by sleeping)."""
    started, finished = threading.Event(), threading.Event()
    outcome: list = []

    def work(deadline: Deadline) -> None:
        def stream():
            yield 0
            started.set()
            assert deadline._cancelled.wait(30), "never cancelled"
            yield from range(1, 1000)

        outcome.append(collect(stream(), deadline))
        finished.set()

    async def cancel_while_running() -> Deadline:
        deadline = Deadline(None)
        task = asyncio.ensure_future(Runner(1).run(work, deadline, deadline))
        assert await asyncio.to_thread(started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return deadline

    deadline = asyncio.run(cancel_while_running())
    assert deadline.cancelled
    assert finished.wait(30)
    assert outcome == [([0, 1], CANCELLED)]


@pytest.fixture
def records() -> list[DesignResult]:
    props = {"QED": 0.7, "logP": 1.2, "MW": 151.2, "SA": 1.4, "TPSA": 49.3, "HBD": 2.0, "HBA": 2.0}
    return [
        DesignResult("CC(=O)Nc1ccc(O)cc1", "valid", properties=props, similarity=1.0),
        DesignResult(None, "invalid", error="decoded graph falls apart into 2 fragments"),
        DesignResult("CC(=O)Nc1ccc(Cl)cc1", "rejected", error="alerts", properties=props, alerts=["BRENK: x"], similarity=0.6, reasons=["structural alert BRENK: x"]),
        DesignResult("CC(=O)Nc1ccc(O)cc1", "duplicate", properties=props, similarity=1.0),
    ]


def test_table_has_one_row_per_record_in_order(records):
    frame = results.table(records)
    assert frame["#"].tolist() == [0, 1, 2, 3]
    assert frame["state"].tolist() == ["valid", "invalid", "rejected", "duplicate"]
    assert "score" not in frame.columns  # nobody scored anything: no empty column
    assert frame.loc[2, "alerts"] == "BRENK: x" and frame.loc[2, "reason"] == "structural alert BRENK: x"
    assert frame.loc[1, "reason"].startswith("decoded graph")
    assert frame.loc[0, "HBD"] == 2


def test_files_keep_every_record(records, tmp_path):
    csv_path, sdf_path = results.write_files(records, "out", tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["state"] for r in rows] == ["valid", "invalid", "rejected", "duplicate"]
    assert rows[2]["reasons"] == "structural alert BRENK: x" and rows[0]["similarity"] == "1"
    assert sdf_path.read_text().count("$$$$") == 4


def test_legend_lines(records):
    assert results.legend(0, records[0])[0] == "#0"
    lines = results.legend(2, records[2])
    assert lines[0] == "#2 · rejected" and "sim 0.60 · 1 alert" in lines and lines[-1] == "structural alert BRENK: x"


def _decoded(grid: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", grid)]


def test_depictions_align_and_highlight_the_core():
    core = depict.reference_from_core("c1ccc2[nH]c([*:1])nc2c1")
    assert core is not None and core.pattern.GetNumAtoms() == 9
    svg = depict.molecule_svg("CCc1nc2ccccc2[nH]1", "#0", reference=core)
    assert svg.startswith("<?xml") and "</svg>" in svg
    highlight = "#{:02X}{:02X}{:02X}".format(*(round(255 * c) for c in depict.HIGHLIGHT))
    assert highlight in svg.upper()  # the core is highlighted
    assert highlight not in depict.molecule_svg("CCO").upper()


def test_analog_reference_and_bad_smiles_never_raise():
    seed = depict.reference_from_smiles("CC(=O)Nc1ccc(O)cc1")
    assert seed is not None and seed.use_mcs
    assert depict.reference_from_smiles("C1CC(") is None and depict.reference_from_core("") is None
    assert "cannot draw" in depict.molecule_svg("C1CC(")
    grid = depict.grid_html([depict.Tile("CCO", ["#0"]), depict.Tile("c1ccccc1Cl", ["#1", "QED 0.5"], muted=True)], seed, note="2 drawn")
    assert grid.count('class="molgen-cell"') == 2 and "2 drawn" in grid and "opacity" in grid
    assert all("</svg>" in svg for svg in _decoded(grid))


def test_the_grid_escapes_every_text_it_shows():
    hostile = "<img src=x onerror=alert(1)>"
    grid = depict.grid_html([depict.Tile(hostile, [hostile, "#1"])], note=hostile)
    assert "<img src=x" not in grid and grid.count("&lt;img src=x onerror=alert(1)&gt;") == 4  # title, alt, legend, note
    svg = _decoded(grid)[0]
    assert "cannot draw" in svg and "<img" not in svg


@pytest.mark.parametrize(("architecture", "steps", "repairs"), [("set", True, False), ("discrete", False, True)])
def test_the_page_offers_steps_and_repairs_only_where_the_prior_takes_them(architecture, steps, repairs):
    from types import SimpleNamespace

    from molgen.ui.service import DesignService

    service = DesignService.__new__(DesignService)  # the flags read only the pipeline's prior
    service.pipeline = SimpleNamespace(prior=SimpleNamespace(config=SimpleNamespace(architecture=architecture, default_repairs=2)))
    assert (service.uses_steps, service.uses_repairs) == (steps, repairs)
    assert service.default_repairs == (2 if repairs else 0)
    service.pipeline = SimpleNamespace(prior=None)
    assert service.uses_steps and not service.uses_repairs and service.default_repairs == 0
