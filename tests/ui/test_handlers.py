"""The page's handlers with the shipped model, without a browser: hostile input gets a message (escaped: the page
renders messages as HTML), never an uncaught exception; a request at its deadline returns what it has."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

gr = pytest.importorskip("gradio")

from molgen.pipeline import DEFAULT_MODEL
from molgen.ui.forms import Limits

HOSTILE = "<img src=x onerror=alert(1)>"
LIMITS = Limits(max_n=4, max_steps=20, max_repairs=2, max_calls=16, max_population=8, max_points=4, deadline=60)


@pytest.fixture(scope="module")
def service():
    from molgen.pipeline import MolgenPipeline
    from molgen.ui.service import DesignService

    return DesignService(MolgenPipeline.from_pretrained(DEFAULT_MODEL, device="cpu"))


def handlers(service, **limits):
    import app

    return app.Handlers(service, Limits(**{**LIMITS.__dict__, **limits}))


def run(coroutine):
    return asyncio.run(coroutine)


def generate(h, service, n=2, contain="", avoid="", sa="", seed=0, **targets):
    fields = [targets.get(name, "") for name in service.property_names]
    return run(h.generate(n, seed, 20, 0, 2.0, 0.0, False, contain, avoid, False, sa, *fields))


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda h, s: run(h.analogs(HOSTILE, 0.5, 2, 0, 20, "", "", False, "")), "seed SMILES"),
        (lambda h, s: run(h.decorate(f"c1ccccc1{HOSTILE}", "", 2, 0, 20, "", "", False, "")), "text after the SMILES"),
        (lambda h, s: run(h.interpolate("CCO", "<b>bold</b>", 3, 0.0, False, "")), "second SMILES"),
        (lambda h, s: generate(h, s, avoid=HOSTILE), "SMARTS"),
        (lambda h, s: generate(h, s, QED=HOSTILE), "QED target"),
        (lambda h, s: generate(h, s, sa=HOSTILE), "SA ceiling"),
    ],
    ids=["analogs", "decorate", "interpolate", "smarts", "target", "sa"],
)
def test_a_message_quoting_the_input_escapes_it(service, call, shown):
    with pytest.raises(gr.Error) as error:
        call(handlers(service), service)
    text = error.value.message
    assert shown in text, text
    assert "<" not in text and ">" not in text, text  # nothing the page could take for a tag
    assert "&lt;" in text, text  # the input is quoted, escaped: the page shows it as typed


def test_opening_the_filters_sends_an_empty_sa_ceiling_and_the_run_succeeds(service):
    summary, *_ = generate(handlers(service), service, n=2, sa="")
    assert summary.startswith("**2 molecules"), summary
    with pytest.raises(gr.Error, match="SA ceiling 0: SA scores run from 1"):
        generate(handlers(service), service, sa=0)


def test_a_request_at_its_deadline_returns_what_it_has_with_a_message(service):
    """A deadline of 0 s has passed at the first result, however fast the machine: the request keeps that one."""
    summary, grid, table, *_ = generate(handlers(service, deadline=0), service, n=4)
    assert summary.startswith("**1 molecules"), summary
    assert "Stopped early (the 0 s deadline of a request on this server passed): these are the 1 molecules made by then." in summary
    assert len(table) == 1 and grid.count('class="molgen-cell"') <= 1
    summary, *_ = run(handlers(service, deadline=0).optimize("QED", 1, 3, "", 1, 0, 0, "", "", "mixed", 4, 8, 0, "", "", False, ""))
    assert "Stopped early" in summary and "deadline" in summary, summary


NUMBERS = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12))
TEXT = st.text(alphabet=st.sampled_from(list("CNOc1()[]=#+-.%0123456789*:<>&\"' \n\\")), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), field=st.sampled_from(["n", "seed", "contain", "avoid", "sa", "QED", "MW"]))
def test_hostile_form_values_get_results_or_a_message(service, data, field):
    """One field at a time holds something hostile, the others are fine: results or a message, never a crash."""
    options = {"n": 1, "seed": 0, "contain": "", "avoid": "", "sa": ""}
    options[field] = data.draw(NUMBERS if field in ("n", "seed") else TEXT | NUMBERS.map(str), label=field)
    try:
        generate(handlers(service), service, **options)
    except gr.Error as error:
        assert "<" not in error.message and ">" not in error.message
        assert error.title != "Server error", error.message


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(list("CNOSc1()[]=#@+-.%0123456789*: <>/H")), max_size=60))
def test_hostile_molecules_get_results_or_a_message(service, text):
    h = handlers(service)
    for call in (
        lambda: run(h.analogs(text, 0.5, 1, 0, 20, "", "", False, "")),
        lambda: run(h.decorate(text, "", 1, 0, 20, "", "", False, "")),
        lambda: run(h.interpolate(text, "CCO", 2, 0.0, False, "")),
    ):
        try:
            call()
        except gr.Error as error:
            assert "<" not in error.message and ">" not in error.message
            assert error.title != "Server error", error.message


def test_optimize_takes_scoring_components_as_toml(service):
    toml = 'aggregation = "arithmetic"\n[[component]]\ntype = "qed"\n[[component]]\ntype = "property"\nproperty = "MW"\nhigh = 300\n'
    summary, *_ = run(handlers(service).optimize("scoring components (TOML)", 1, 3, "", 1, 0, 0, toml, "", "mixed", 4, 8, 0, "", "", False, ""))
    assert "best molecules" in summary, summary
    with pytest.raises(gr.Error, match="not valid TOML"):
        run(handlers(service).optimize("scoring components (TOML)", 1, 3, "", 1, 0, 0, "[[component]", "", "mixed", 4, 8, 0, "", "", False, ""))
    with pytest.raises(gr.Error, match="type=&#x27;potency&#x27;"):
        run(handlers(service).optimize("scoring components (TOML)", 1, 3, "", 1, 0, 0, "[[component]]\ntype = 'potency'\n", "", "mixed", 4, 8, 0, "", "", False, ""))
