"""molgen web UI: generate, explore and optimise molecules with the shipped model, and design scenes with the shipped
scene model, in a browser.

    python app.py                                  # http://127.0.0.1:7860, the shipped model (checkpoints/moses) and,
                                                   # behind the Scenes switch, checkpoints/clevr
    python app.py --model checkpoints/clevr        # scenes only
    python app.py --port 8000 --model runs/prior/model --auth chemist:secret
    python app.py --public --auth chemist:secret   # listen on every interface (only when asked)
    python app.py --concurrency 2 --deadline 60    # 2 requests at once; each stops after 60 s with what it has

Login can also come from the environment: MOLGEN_UI_AUTH=user:password. Nothing is downloaded: the model is
read from disk and Gradio's telemetry is off. The page only calls the public Python API (molgen.design
through molgen.ui.service; scenes: molgen.scenes.designer and MolgenPipeline.nearest through molgen.ui.scenes); drawing, tables and files live in molgen/ui/, and how a request runs (its worker
thread, deadline and Cancel button) in molgen/ui/jobs.py. Several requests run at once (--concurrency), the
others wait in a queue; a request still running at its deadline stops and shows what it made by then.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check: nothing leaves the machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads sleep, not spin, while other requests wait (before torch loads)

import argparse
import functools
import html
import logging
import time

import gradio as gr
import pandas as pd
import torch

from molgen.device import DEFAULT_PRECISION, PRECISIONS
from molgen.pipeline import DEFAULT_MODEL, MolgenPipeline
from molgen.ui import depict, results, scene_depict
from molgen.ui.forms import (
    FormError,
    Limits,
    check_count,
    parse_atom_count,
    parse_auth,
    parse_lines,
    parse_optional_float,
    parse_sa_ceiling,
    parse_seed,
    parse_targets,
)
from molgen.ui.jobs import CANCELLED, Deadline, Runner
from molgen.ui.scenes import EXAMPLE_PARTIAL, SceneService
from molgen.ui.scenes import legend as scene_legend
from molgen.ui.scenes import table as scene_table
from molgen.ui.scenes import write_jsonl as scene_jsonl
from molgen.ui.service import DesignService, FeatureUnavailable, Outcome

log = logging.getLogger("molgen.app")

GRID_MAX = 120  # depictions drawn per request; the table and the files hold every result
MODEL_QUEUE = "model"  # every tab's job shares one concurrency limit (--concurrency): they all use the same CPU / GPU
CONCURRENCY = 4  # model requests running at once by default; the others wait in the queue
OBJECTIVES = ["QED", "logP window", "similarity to reference", "weighted combination", "scoring components (TOML)"]
COMPONENTS_EXAMPLE = """aggregation = "geometric"
[[component]]
type = "qed"
weight = 2
[[component]]
type = "property"
property = "MW"
low = 250
high = 400
"""
MAX_COMPONENTS_TEXT = 5000
STRATEGY_CHOICES = ["mixed", "remask", "surrogate", "graph-ga"]
""":data:`molgen.design.optimization.STRATEGIES`, the default first (the page does not import the design package at start)."""
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])  # no web fonts
CSS = ".molgen-grid img {background: white}"
SCENE_MODEL = DEFAULT_MODEL.parent / "clevr"
"""The shipped scene model, served on the Scenes side of the page when present (--scene-model)."""


# --- turning results into what the page shows -------------------------------------------------------


def _summary(records: list, seconds: float, what: str) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state] = counts.get(r.state, 0) + 1
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"**{len(records)} {what}** ({parts}) in {seconds:.1f} s"


def _target_line(report: dict[str, dict[str, float]]) -> str:
    """'On target: QED 40% (mean distance 0.08) · MW 75% (...)' from the design API's target report."""
    parts = [f"{name} {r['in_range']:.0%} (mean distance {r['mae']:.3g})" for name, r in report.items() if r.get("n")]
    return "On target: " + " · ".join(parts) if parts else ""


def _stopped_line(stopped: str | None, count: int, what: str) -> str:
    if stopped is None:
        return ""
    made = f"these are the {count} {what} made by then" if count else f"no {what} were made by then"
    return f"Stopped early ({html.escape(stopped)}): {made}."


def _present(outcome: Outcome, stem: str, started: float, what: str = "molecules", reference: depict.Reference | None = None, score_name: str = "score", extra: str = ""):
    """(summary, grid, table, CSV button, SDF button) for a request's result records; a request that stopped early
    says so. (A cancelled request's outputs are dropped by Gradio: nothing is drawn for it.)"""
    records = outcome.records
    if outcome.stopped is not None:
        log.info("%s stopped early (%s) with %d results", stem, outcome.stopped, len(records))
    if outcome.stopped == CANCELLED:
        return (gr.skip(),) * 5
    stopped = _stopped_line(outcome.stopped, len(records), what)
    if stopped:
        gr.Warning(stopped)
        extra = f"{stopped}  \n{extra}" if extra else stopped
    elif not records:
        gr.Warning("No molecules came back; try other settings.")
    drawable = [(k, r) for k, r in enumerate(records) if r.smiles and r.state != "duplicate"]  # repeats: table only
    shown = drawable[:GRID_MAX]
    tiles = [depict.Tile(r.smiles, results.legend(k, r, score_name), muted=r.state != "valid") for k, r in shown]
    left_out = {
        "duplicates": sum(r.state == "duplicate" for r in records),
        "invalid": sum(r.smiles is None for r in records),
        f"beyond the first {GRID_MAX}": len(drawable) - len(shown),
    }
    left_out = ", ".join(f"{count} {label}" for label, count in left_out.items() if count)
    greyed = " (rejected ones greyed)" if any(r.state == "rejected" for _, r in shown) else ""
    note = f"{len(shown)} drawn{greyed}; not drawn but in the table and the files: {left_out}." if left_out else ""
    if records and not any(r.state == "valid" for r in records):
        gr.Warning("None of the results is a valid molecule that passed the constraints; see the table for why.")
    csv_path, sdf_path = results.write_files(records, stem)
    return (
        _summary(records, time.perf_counter() - started, what) + (f"  \n{extra}" if extra else ""),
        depict.grid_html(tiles, reference, note),
        results.table(records),
        gr.DownloadButton(value=str(csv_path), interactive=True),
        gr.DownloadButton(value=str(sdf_path), interactive=True),
    )


def _on_page(fn):
    """Show bad input and missing features as a message on the page; the app keeps serving. Messages quote what the
    user typed, and the page renders them as HTML: they are escaped."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except FeatureUnavailable as exc:
            raise gr.Error(html.escape(str(exc)), title="Not available in this version", duration=None, print_exception=False) from None
        except ValueError as exc:  # FormError, DesignInputError, InvalidMoleculeError, pipeline argument errors
            raise gr.Error(html.escape(str(exc)), title="Please check the input", duration=None, print_exception=False) from None
        except Exception as exc:
            log.exception("request failed")
            message = f"The server could not finish this request ({type(exc).__name__}: {exc}). It is still running; try again or change the settings."
            raise gr.Error(html.escape(message), title="Server error", duration=None) from None

    return wrapper


def _request(fn):
    """A handler run as one request of the page: in a worker thread of :attr:`Handlers.runner` (the event loop, and
    with it every other user and ``/config``, stays free), with a :class:`Deadline` of ``limits.deadline`` seconds
    that the handler receives as ``deadline`` and that Gradio's cancelling of the event (the tab's Cancel button)
    trips. Gradio reads the handler's own signature (its inputs and ``progress``) through ``functools.wraps``."""
    shown = _on_page(fn)

    @functools.wraps(fn)
    async def run(self, *args, **kwargs):
        deadline = Deadline(self.limits.deadline)
        return await self.runner.run(shown, deadline, self, *args, deadline=deadline, **kwargs)

    return run


def _progress_callback(progress: gr.Progress, desc: str):
    return lambda done, total: progress((done, total), desc=desc)


# --- the handlers: one per tab ------------------------------------------------------------------------


class Handlers:
    """What each button does: read the form, call the design service until the request's ``deadline``, present the
    records. Each handler is a coroutine for Gradio (see :func:`_request`); ``runner`` runs the work."""

    def __init__(self, service: DesignService, limits: Limits, runner: Runner | None = None) -> None:
        self.service = service
        self.limits = limits
        self.runner = runner or Runner(2 * CONCURRENCY)

    def _common(self, n, steps, alerts, sa_max, contain, avoid, windows=None):
        n = check_count("number of molecules", n, 1, self.limits.max_n)
        steps = check_count("steps", steps, 1, self.limits.max_steps)
        filters = self.service.filters(bool(alerts), parse_sa_ceiling(sa_max), windows)
        return n, steps, filters, parse_lines(contain), parse_lines(avoid)

    @_request
    def generate(self, n, seed, steps, repairs, guidance, steer, hard, contain, avoid, alerts, sa_max, *targets, progress=gr.Progress(), deadline=None):
        started = time.perf_counter()
        targets = parse_targets(dict(zip(self.service.property_names, targets, strict=True)))
        windows = {name: t for name, t in targets.items() if isinstance(t, tuple)} if hard else None
        n, steps, filters, contain, avoid = self._common(n, steps, alerts, sa_max, contain, avoid, windows)
        repairs = check_count("repair passes", repairs, 0, self.limits.max_repairs) if self.service.uses_repairs else None
        steer = parse_optional_float("predictor guidance", steer) or 0.0
        if steer < 0:
            raise FormError(f"predictor guidance = {steer:g}: must be 0 (off) or more")
        outcome = self.service.generate(
            n, deadline, seed=parse_seed(seed), steps=steps, repairs=repairs, targets=targets or None, guidance_scale=float(guidance),
            property_guidance=steer if targets and self.service.has_predictor else 0.0,
            must_contain=tuple(contain), must_avoid=tuple(avoid), filters=filters, progress=_progress_callback(progress, "generating"),
        )  # fmt: skip
        return _present(outcome, "molgen_generate", started, extra=_target_line(self.service.target_report(outcome.records, targets)))

    @_request
    def analogs(self, smiles, similarity, n, seed, steps, contain, avoid, alerts, sa_max, progress=gr.Progress(), *, deadline=None):
        started = time.perf_counter()
        smiles = _required("seed SMILES", smiles)
        n, steps, filters, contain, avoid = self._common(n, steps, alerts, sa_max, contain, avoid)
        outcome = self.service.analogs(
            smiles, n, deadline, similarity=float(similarity), seed=parse_seed(seed), steps=steps, must_contain=tuple(contain),
            must_avoid=tuple(avoid), filters=filters, progress=_progress_callback(progress, "generating analogs"),
        )  # fmt: skip
        return _present(outcome, "molgen_analogs", started, "analogs", depict.reference_from_smiles(smiles))

    @_request
    def decorate(self, core, extra_atoms, n, seed, steps, contain, avoid, alerts, sa_max, progress=gr.Progress(), *, deadline=None):
        started = time.perf_counter()
        core = _required("core", core)
        n, steps, filters, contain, avoid = self._common(n, steps, alerts, sa_max, contain, avoid)
        outcome = self.service.decorate(
            core, n, deadline, seed=parse_seed(seed), steps=steps, must_contain=tuple(contain), must_avoid=tuple(avoid),
            filters=filters, progress=_progress_callback(progress, "decorating"), extra_atoms=parse_atom_count("atoms to add", extra_atoms),
        )  # fmt: skip
        return _present(outcome, "molgen_decorations", started, "decorations", depict.reference_from_core(core))

    @_request
    def optimize(self, kind, logp_low, logp_high, reference, w_qed, w_logp, w_sim, components, start, strategy, n, calls, seed, contain, avoid, alerts, sa_max, progress=gr.Progress(), *, deadline=None):
        started = time.perf_counter()
        n = check_count("molecules per round", n, 2, min(self.limits.max_n, self.limits.max_population))
        calls = check_count("objective calls", calls, 1, self.limits.max_calls)
        if strategy not in STRATEGY_CHOICES:
            raise FormError(f"strategy: choose one of {', '.join(STRATEGY_CHOICES)}")
        low, high = parse_optional_float("logP low", logp_low), parse_optional_float("logP high", logp_high)
        weights = {"QED": float(w_qed or 0), "logP window": float(w_logp or 0), "similarity to reference": float(w_sim or 0)}
        uses = {kind} if kind != "weighted combination" else {k for k, w in weights.items() if w}
        if kind == "scoring components (TOML)" and len(components or "") > MAX_COMPONENTS_TEXT:
            raise FormError(f"scoring components: at most {MAX_COMPONENTS_TEXT:,} characters")
        if "logP window" in uses and (low is None or high is None or low > high):
            raise FormError("logP window: give a low and a high end, low below high (e.g. 1 and 3)")
        reference = _required("reference SMILES", reference) if "similarity to reference" in uses else None
        objective = self.service.objective(kind, logp_low=low, logp_high=high, reference=reference, weights=weights, components=components or "")
        filters = self.service.filters(bool(alerts), parse_sa_ceiling(sa_max))
        outcome = self.service.optimize(
            objective, deadline, start=parse_lines(start) or None, strategy=strategy, n=n, calls=calls, seed=parse_seed(seed), filters=filters,
            must_contain=tuple(parse_lines(contain)), must_avoid=tuple(parse_lines(avoid)), reference=reference,
            progress=lambda used, total, best: progress((used, total), desc="optimising" if best is None else f"optimising (best {best:.3f})"),
        )  # fmt: skip
        shown = _present(outcome, "molgen_optimized", started, "best molecules", score_name="score")
        if outcome.stopped == CANCELLED:
            return (*shown, gr.skip())
        trajectory = pd.DataFrame(outcome.trajectory)
        if not trajectory.empty:
            trajectory = trajectory.melt(id_vars="calls", value_vars=[c for c in ("best_score", "top10_mean") if c in trajectory], var_name="curve", value_name="score")
        return (*shown, trajectory)

    @_request
    def interpolate(self, smiles_a, smiles_b, points, refine, alerts, sa_max, *, deadline=None):
        started = time.perf_counter()
        smiles_a, smiles_b = _required("first molecule", smiles_a), _required("second molecule", smiles_b)
        points = check_count("points", points, 2, self.limits.max_points)
        filters = self.service.filters(bool(alerts), parse_sa_ceiling(sa_max))
        outcome = self.service.interpolate(smiles_a, smiles_b, points, deadline, filters=filters, refine=float(refine or 0))
        return _present(outcome, "molgen_interpolation", started, "points", depict.reference_from_smiles(smiles_a))


def _required(name: str, text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise FormError(f"{name}: paste a SMILES first")
    return text


def _present_scenes(outcome, stem: str, started: float, what: str, query=None, extra: str = ""):
    """(summary, grid, table, JSON-lines button) for a scene request's records; the query of a retrieval is drawn
    first; a request that stopped early says so."""
    records = outcome.records
    if outcome.stopped == CANCELLED:
        return (gr.skip(),) * 4
    stopped = _stopped_line(outcome.stopped, len(records), what)
    if stopped:
        gr.Warning(stopped)
        extra = f"{stopped}  \n{extra}" if extra else stopped
    shown = records[:GRID_MAX]
    tiles = [] if query is None else [scene_depict.SceneTile(query, ["query", f"{query.num_objects} objects"])]
    tiles += [
        scene_depict.SceneTile(r.scene, scene_legend(k, r), tuple((getattr(r, "given", None) or {}).values()), muted=not getattr(r, "satisfied", True))
        for k, r in enumerate(shown)
    ]  # fmt: skip
    note = f"{len(shown)} drawn; all {len(records)} in the table and the file." if len(records) > len(shown) else ""
    satisfied = sum(getattr(r, "satisfied", True) for r in records)
    summary = f"**{len(records)} {what}**" + (f" ({satisfied} satisfy the request)" if what != "nearest scenes" else "") + f" in {time.perf_counter() - started:.1f} s"
    return (
        summary + (f"  \n{extra}" if extra else ""),
        scene_depict.scene_grid_html(tiles, note),
        scene_table(records),
        gr.DownloadButton(value=str(scene_jsonl(records, stem)), interactive=True),
    )


class SceneHandlers:
    """What each button of the scene tabs does (like :class:`Handlers`, over a :class:`SceneService`)."""

    def __init__(self, scenes: SceneService, limits: Limits, runner: Runner | None = None) -> None:
        self.scenes = scenes
        self.limits = limits
        self.runner = runner or Runner(2 * CONCURRENCY)

    @_request
    def design(self, request, n, seed, *, deadline=None):
        started = time.perf_counter()
        n = check_count("number of scenes", n, 1, self.limits.max_n)
        outcome = self.scenes.design(request, n, deadline, seed=parse_seed(seed))
        return _present_scenes(outcome, "molgen_scenes", started, "scenes")

    @_request
    def complete(self, partial, request, n, seed, *, deadline=None):
        started = time.perf_counter()
        n = check_count("number of completions", n, 1, self.limits.max_n)
        outcome = self.scenes.complete(partial, request, n, deadline, seed=parse_seed(seed))
        return _present_scenes(outcome, "molgen_completions", started, "completions", extra="Given objects are ringed in gold.")

    @_request
    def nearest(self, query, k, seed, *, deadline=None):
        started = time.perf_counter()
        k = check_count("number of neighbours", k, 1, self.limits.max_n)
        scene, outcome = self.scenes.nearest(query, k, seed=parse_seed(seed))
        return _present_scenes(outcome, "molgen_nearest", started, "nearest scenes", query=scene, extra=f"Searched {self.scenes.pool_name} by latent distance (optimal matching of the per-object tokens).")


# --- the page -------------------------------------------------------------------------------------------


def _counts(tab: str, noun: str, steps: int | None = None, show_steps: bool = True) -> list:
    """Number of results, seed and (for sampling tasks) steps, side by side in the current row; the steps field is
    kept but hidden (``show_steps=False``) for a prior that draws its tokens without denoising steps."""
    fields = [gr.Number(label=f"number of {noun}", value=24, precision=0, elem_id=f"{tab}-n"), gr.Number(label="seed", value=0, precision=0, elem_id=f"{tab}-seed")]
    if steps is not None:
        fields.append(gr.Number(label="steps", value=steps, precision=0, elem_id=f"{tab}-steps", visible=show_steps))
    return fields


def _task(tab: str, label: str, handler, inputs: list, plot=None) -> None:
    """The tab's run and Cancel buttons, its outputs (and an optional plot under them), wired to ``handler`` in the
    shared model queue; the API name is the tab's id (``/generate``, ``/analogs``, ...). Cancel takes a waiting
    request out of the queue and stops a running one at its next batch (:mod:`molgen.ui.jobs`)."""
    with gr.Row():
        button = gr.Button(label, variant="primary", elem_id=f"{tab}-run", scale=4)
        cancel = gr.Button("Cancel", variant="stop", elem_id=f"{tab}-cancel", scale=1)
    outputs = _outputs(tab) + ([plot()] if plot is not None else [])
    event = button.click(handler, inputs, outputs, api_name=tab, concurrency_id=MODEL_QUEUE, api_visibility="public")
    cancel.click(None, None, None, cancels=[event])


def _outputs(tab: str) -> list:
    """Summary, grid, table and download buttons of one tab (element ids: ``<tab>-summary``, ...)."""
    summary = gr.Markdown(elem_id=f"{tab}-summary")
    grid = gr.HTML(elem_id=f"{tab}-grid")
    table = gr.Dataframe(label="results (sort: the ⋮ menu of a column header)", interactive=False, elem_id=f"{tab}-table", wrap=True)
    with gr.Row():
        csv = gr.DownloadButton("Download CSV", interactive=False, elem_id=f"{tab}-csv", size="sm")
        sdf = gr.DownloadButton("Download SDF", interactive=False, elem_id=f"{tab}-sdf", size="sm")
    return [summary, grid, table, csv, sdf]


def _constraints(tab: str, smarts: bool = True) -> list:
    """Must-contain / must-avoid SMARTS and the filters, folded away until wanted."""
    with gr.Accordion("Constraints and filters", open=False):
        fields = []
        if smarts:
            with gr.Row():
                fields.append(gr.Textbox(label="must contain (SMARTS, one per line)", lines=2, placeholder="c1ccccc1\n[NX3][CX3]=O", elem_id=f"{tab}-contain"))
                fields.append(gr.Textbox(label="must avoid (SMARTS, one per line)", lines=2, placeholder="[N+](=O)[O-]", elem_id=f"{tab}-avoid"))
        with gr.Row():
            fields.append(gr.Checkbox(label="reject structural alerts (PAINS, Brenk, NIH)", elem_id=f"{tab}-alerts"))
            # a Textbox: Gradio's Number field turns "empty" into 0 as soon as it is drawn (when the accordion opens)
            fields.append(gr.Textbox(label="SA ceiling (1 easy - 10 hard; empty: none)", max_lines=1, placeholder="e.g. 4.5", elem_id=f"{tab}-sa"))
    return fields


def _unavailable(service: DesignService, method: str) -> None:
    if not service.has(method):
        gr.Markdown(f"> **Not available in this version of molgen** (the design API has no `Designer.{method}`).")


def build(service: DesignService | None, limits: Limits = Limits(), runner: Runner | None = None, scenes: SceneService | None = None) -> gr.Blocks:
    """The page: one tab per design task, each with its form, a grid of depictions, a table and downloads. With both
    a molecule model (``service``) and a scene model (``scenes``), a switch on top chooses the domain; with one of
    them, the page is that domain's."""
    if service is None and scenes is None:
        raise ValueError("build: give a molecule service, a scene service or both")
    runner = runner or Runner(2 * CONCURRENCY)
    with gr.Blocks(title="molgen", analytics_enabled=False) as demo:
        if service is not None and scenes is not None:
            with gr.Tabs(elem_id="domain"):
                with gr.Tab("Molecules", id="molecules", elem_id="domain-molecules"):
                    _molecule_page(service, limits, runner)
                with gr.Tab("Scenes", id="scenes", elem_id="domain-scenes"):
                    _scene_page(scenes, limits, runner)
        elif service is not None:
            _molecule_page(service, limits, runner)
        else:
            _scene_page(scenes, limits, runner)
    return demo


def _scene_page(scenes: SceneService, limits: Limits, runner: Runner) -> None:
    """The scene tabs: design to a request, complete a partial scene, nearest scenes."""
    handlers = SceneHandlers(scenes, limits, runner)
    gr.Markdown(
        "# molgen: scenes\nCLEVR-style scenes from a scene-graph model (graph tokenizer + latent prior). Each scene is drawn from "
        "above (the camera at the bottom; squares are cubes, shaded discs spheres, ringed discs cylinders; large objects drawn larger; "
        f"metal ones outlined and shiny) and as a graph of its relations. Limits per request: {limits.max_n} scenes"
        + (f", {limits.deadline:g} s" if limits.deadline is not None else "") + "."
    )
    with gr.Tabs():
        with gr.Tab("Design scenes", id="scenes-design"):
            request = gr.Textbox(
                label="request: counts and relations, separated by ';' (2 red cubes = exactly two; at least / at most N ...; no ...; N objects; "
                "something left of / right of / behind / in front of a ...)",
                value="2 red cubes; something left of a metal sphere", max_lines=2, elem_id="scenes-design-request",
            )  # fmt: skip
            with gr.Row():
                n = gr.Number(label="number of scenes", value=6, precision=0, elem_id="scenes-design-n")
                seed = gr.Number(label="seed", value=0, precision=0, elem_id="scenes-design-seed")
            _scene_task("scenes-design", "Design", handlers.design, [request, n, seed])

        with gr.Tab("Complete a scene", id="scenes-complete"):
            partial = gr.Textbox(
                label="partial scene (JSON: objects with shape, color, material, size and a 2D position [right, behind]; or CLEVR's relationship lists)",
                value=EXAMPLE_PARTIAL, lines=4, elem_id="scenes-complete-partial",
            )  # fmt: skip
            with gr.Row():
                also = gr.Textbox(label="also (a request, optional), e.g. 7 objects; no metal objects", value="6 objects", max_lines=1, elem_id="scenes-complete-request")
                n = gr.Number(label="number of completions", value=6, precision=0, elem_id="scenes-complete-n")
                seed = gr.Number(label="seed", value=0, precision=0, elem_id="scenes-complete-seed")
            _scene_task("scenes-complete", "Complete", handlers.complete, [partial, also, n, seed])

        with gr.Tab("Nearest scenes", id="scenes-nearest"):
            query = gr.Textbox(label="query scene (JSON; empty: a scene sampled from the model)", lines=3, elem_id="scenes-nearest-query")
            with gr.Row():
                k = gr.Number(label="number of neighbours", value=6, precision=0, elem_id="scenes-nearest-k")
                seed = gr.Number(label="seed (of the sampled query)", value=0, precision=0, elem_id="scenes-nearest-seed")
            _scene_task("scenes-nearest", "Find nearest", handlers.nearest, [query, k, seed])


def _scene_task(tab: str, label: str, handler, inputs: list) -> None:
    """Run and Cancel buttons and the outputs of a scene tab (summary, grid, table, JSON-lines download)."""
    with gr.Row():
        button = gr.Button(label, variant="primary", elem_id=f"{tab}-run", scale=4)
        cancel = gr.Button("Cancel", variant="stop", elem_id=f"{tab}-cancel", scale=1)
    summary = gr.Markdown(elem_id=f"{tab}-summary")
    grid = gr.HTML(elem_id=f"{tab}-grid")
    table = gr.Dataframe(label="scenes", interactive=False, elem_id=f"{tab}-table", wrap=True)
    download = gr.DownloadButton("Download JSON lines", interactive=False, elem_id=f"{tab}-jsonl", size="sm")
    event = button.click(handler, inputs, [summary, grid, table, download], api_name=tab.replace("-", "_"), concurrency_id=MODEL_QUEUE, api_visibility="public")
    cancel.click(None, None, None, cancels=[event])


def _molecule_page(service: DesignService, limits: Limits, runner: Runner) -> None:
    """The molecule tabs."""
    handlers = Handlers(service, limits, runner)
    steps = service.default_steps
    caps = [f"{limits.max_n} molecules"]
    caps += [f"{limits.max_steps} steps"] if service.uses_steps else []
    caps += [f"{limits.max_repairs} repair passes"] if service.uses_repairs else []
    caps += [f"{limits.deadline:g} s (then a request stops and shows what it made)"] if limits.deadline is not None else []
    gr.Markdown(f"# molgen\nGenerate molecules with a graph-tokenizer + latent-prior model. Limits per request on this server: {', '.join(caps)}.")
    with gr.Tabs():
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                sampling = _counts("generate", "molecules", steps, service.uses_steps)
                repairs = gr.Number(
                    label="repair passes (redraw samples that break a valence; 0: none)", value=service.default_repairs, precision=0,
                    elem_id="generate-repairs", visible=service.uses_repairs,
                )
                guidance = gr.Slider(1.0, 5.0, value=2.0, step=0.1, label="guidance strength (toward the targets)", elem_id="generate-guidance")
                steer = gr.Slider(
                    0.0, 10.0, value=service.default_property_guidance, step=0.5, visible=service.has_predictor, elem_id="generate-steer",
                    label="predictor guidance (steers harder toward the targets, slower; 0: off)",
                )
            with gr.Accordion("Property targets: a value (0.9) or a range (300-400); empty: no target", open=True):
                with gr.Row():
                    targets = [gr.Textbox(label=name, max_lines=1, placeholder="value or low-high", elem_id=f"generate-target-{name}", min_width=90) for name in service.property_names]
                hard = gr.Checkbox(label="ranges are hard limits (reject molecules outside them; targets only steer otherwise)", elem_id="generate-hard")
            constraints = _constraints("generate")
            _task("generate", "Generate", handlers.generate, [*sampling, repairs, guidance, steer, hard, *constraints, *targets])

        with gr.Tab("Analogs", id="analogs"):
            _unavailable(service, "analogs")
            with gr.Row():
                smiles = gr.Textbox(label="seed SMILES", value="CC(=O)Nc1ccc(O)cc1", max_lines=1, scale=3, elem_id="analogs-smiles")
                similarity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="similarity to the seed (0 loose - 1 close)", scale=2, elem_id="analogs-similarity")
            with gr.Row():
                sampling = _counts("analogs", "analogs", steps, service.uses_steps)
            constraints = _constraints("analogs")
            _task("analogs", "Find analogs", handlers.analogs, [smiles, similarity, *sampling, *constraints])

        with gr.Tab("Scaffold decoration", id="decorate"):
            _unavailable(service, "decorate")
            core = gr.Textbox(label="core (mark attachment points [*:1], [*:2], ...)", value="c1ccc2[nH]c([*:1])nc2c1", max_lines=1, elem_id="decorate-core")
            with gr.Row():
                extra_atoms = gr.Textbox(label="atoms to add (5, or a range 3-8; empty: as in the training data)", max_lines=1, elem_id="decorate-extra")
                sampling = _counts("decorate", "decorations", steps, service.uses_steps)
            constraints = _constraints("decorate")
            _task("decorate", "Decorate", handlers.decorate, [core, extra_atoms, *sampling, *constraints])

        with gr.Tab("Optimize", id="optimize"):
            _unavailable(service, "optimize")
            with gr.Row():
                kind = gr.Dropdown(OBJECTIVES, value="QED", label="objective", elem_id="optimize-objective")
                logp_low = gr.Number(label="logP window: low", value=1.0)
                logp_high = gr.Number(label="logP window: high", value=3.0)
                reference = gr.Textbox(label="reference SMILES (similarity)", value="CC(=O)Nc1ccc(O)cc1", max_lines=1)
            with gr.Row():
                w_qed = gr.Slider(0, 1, value=1.0, step=0.05, label="weight: QED (weighted combination)")
                w_logp = gr.Slider(0, 1, value=0.5, step=0.05, label="weight: logP window")
                w_sim = gr.Slider(0, 1, value=0.0, step=0.05, label="weight: similarity")
            components = gr.Textbox(COMPONENTS_EXAMPLE, lines=6, max_lines=30, label="scoring components (TOML; objective 'scoring components'): qed, sa, similarity, smarts, property", elem_id="optimize-components")
            start = gr.Textbox(label="start from (SMILES, one per line; empty: random molecules)", lines=2)
            with gr.Row():
                strategy = gr.Dropdown(STRATEGY_CHOICES, value=STRATEGY_CHOICES[0], label="strategy", elem_id="optimize-strategy")
                o_n = gr.Number(label="molecules per round", value=32, precision=0, elem_id="optimize-n")
                calls = gr.Number(label="objective calls (budget)", value=300, precision=0, elem_id="optimize-calls")
                o_seed = gr.Number(label="seed", value=0, precision=0, elem_id="optimize-seed")
            filters = _constraints("optimize")
            inputs = [kind, logp_low, logp_high, reference, w_qed, w_logp, w_sim, components, start, strategy, o_n, calls, o_seed, *filters]
            curve = functools.partial(gr.LinePlot, x="calls", y="score", color="curve", label="best and top-10 mean against objective calls", elem_id="optimize-curve")
            _task("optimize", "Optimize", handlers.optimize, inputs, plot=curve)

        with gr.Tab("Interpolate", id="interpolate"):
            _unavailable(service, "interpolate")
            with gr.Row():
                first = gr.Textbox(label="from (SMILES)", value="CC(=O)Nc1ccc(O)cc1", max_lines=1, elem_id="interpolate-a")
                second = gr.Textbox(label="to (SMILES)", value="CC(C)Cc1ccc(C(C)C(=O)O)cc1", max_lines=1, elem_id="interpolate-b")
                points = gr.Number(label="points on the path", value=8, precision=0, elem_id="interpolate-points")
                refine = gr.Slider(0.0, 0.9, value=0.0, step=0.05, label="refine (0: straight latent line; higher: pulled toward molecules the model knows)")
            filters = _constraints("interpolate", smarts=False)
            _task("interpolate", "Interpolate", handlers.interpolate, [first, second, points, refine, *filters])


def _cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model directory (default: the shipped model, %(default)s); a scene model serves the scene tabs only")
    parser.add_argument(
        "--scene-model", default=str(SCENE_MODEL) if (SCENE_MODEL / "prior" / "config.json").exists() else "",
        help="scene model for the Scenes side of the page (default: %(default)s when present); '' for molecules only",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--public", action="store_true", help="listen on 0.0.0.0 instead of 127.0.0.1 (reachable from other machines)")
    parser.add_argument("--auth", default=os.environ.get("MOLGEN_UI_AUTH"), help="require a login, user:password (or env MOLGEN_UI_AUTH)")
    parser.add_argument("--max-n", type=int, default=Limits.max_n, help="molecules per request at most")
    parser.add_argument("--max-steps", type=int, default=Limits.max_steps, help="sampling steps per request at most")
    parser.add_argument("--max-repairs", type=int, default=Limits.max_repairs, help="repair passes per request at most")
    parser.add_argument("--max-calls", type=int, default=Limits.max_calls, help="objective calls per optimisation request at most")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="model requests running at once (default %(default)s); the others wait in the queue")
    parser.add_argument(
        "--deadline", type=float, default=Limits.deadline,
        help="seconds a request may run (default %(default)s); then it stops and shows what it made by then",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the cores this process may use / --concurrency, at least 1)")
    parser.add_argument("--queue-size", type=int, default=64, help="requests waiting at most; beyond that the page says the server is busy")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument(
        "--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
        help="how the prior networks run: fp32, bf16 (faster where the hardware has bfloat16) or auto",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        auth = parse_auth(args.auth)
    except FormError as exc:
        parser.error(str(exc))
    for flag, value in (("--concurrency", args.concurrency), ("--queue-size", args.queue_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            parser.error(f"{flag} {value}: must be at least 1")
    if not args.deadline > 0:
        parser.error(f"--deadline {args.deadline:g}: must be a positive number of seconds")
    if args.public and auth is None:
        log.warning("--public without --auth: anyone who can reach this server can use the page")
    # Concurrent requests share the cores: torch threads per request so that they do not oversubscribe them.
    torch.set_num_threads(args.threads or max(1, _cores() // args.concurrency))
    limits = Limits(
        max_n=args.max_n, max_steps=args.max_steps, max_repairs=args.max_repairs, max_calls=args.max_calls, deadline=args.deadline
    )  # fmt: skip
    pipeline = MolgenPipeline.from_pretrained(args.model, device=args.device, precision=args.precision)
    service = scenes = None
    if pipeline.domain.name == "scene":  # the page adapts: scene tabs only
        scenes = SceneService(pipeline)
    else:
        service = DesignService(pipeline)
        if args.scene_model:
            scene_pipeline = MolgenPipeline.from_pretrained(args.scene_model, device=args.device, precision=args.precision)
            if scene_pipeline.domain.name != "scene":
                parser.error(f"--scene-model {args.scene_model}: a {scene_pipeline.domain.name} model, not a scene model")
            scenes = SceneService(scene_pipeline)
    demo = build(service, limits, Runner(2 * args.concurrency), scenes)  # room for as many again, finishing cancelled requests
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    demo.launch(
        server_name="0.0.0.0" if args.public else "127.0.0.1",
        server_port=args.port,
        auth=auth,
        share=False,
        theme=THEME,
        css=CSS,
        footer_links=["api"],
    )


if __name__ == "__main__":
    main()
