"""molgen web UI (early version): round-trip molecules through the shipped tokenizer and see their properties.

    python app.py [--port 7860] [--model checkpoints/moses] [--public]

The full chemist's UI (generation, analogs, scaffolds, optimisation) comes with the sampling issues; this
page only uses the public Python API.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gradio as gr

from molgen.chem import InvalidMoleculeError, compute_properties, parse_smiles, structural_alerts
from molgen.pipeline import MolgenPipeline

DEFAULT_MODEL = Path(__file__).resolve().parent / "checkpoints" / "moses"
MAX_LINES = 500
COLUMNS = ["input", "reconstructed", "exact", "QED", "logP", "MW", "SA", "alerts", "error"]


def reconstruct_table(pipe: MolgenPipeline, text: str) -> list[list]:
    """One row per non-empty input line; bad lines get their error in the last column."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > MAX_LINES:
        raise gr.Error(f"{len(lines)} lines given; at most {MAX_LINES} per request")
    rows = []
    for r in pipe.reconstruct(lines):
        if r.canonical is None or r.reconstructed is None:
            rows.append([r.input, r.reconstructed or "", False, None, None, None, None, "", r.error or ""])
            continue
        try:
            mol = parse_smiles(r.reconstructed)
        except InvalidMoleculeError as exc:
            rows.append([r.input, r.reconstructed, r.exact, None, None, None, None, "", str(exc)])
            continue
        props = compute_properties(mol, ["QED", "logP", "MW", "SA"])
        alerts = "; ".join(f"{a.catalog}: {a.description}" for a in structural_alerts(mol))
        rows.append([r.input, r.reconstructed, r.exact, *(round(props[k], 3) for k in ("QED", "logP", "MW", "SA")), alerts, ""])
    return rows


def build(pipe: MolgenPipeline) -> gr.Blocks:
    with gr.Blocks(title="molgen") as demo:
        gr.Markdown("# molgen\nRound-trip molecules through the graph tokenizer (one SMILES per line).")
        text = gr.Textbox(lines=8, label="SMILES", value="CC(=O)Oc1ccccc1C(=O)O\nc1ccc2ccccc2c1\nC1CC")
        run = gr.Button("Reconstruct", variant="primary")
        table = gr.Dataframe(headers=COLUMNS, label="results", interactive=False)
        run.click(lambda t: reconstruct_table(pipe, t), inputs=text, outputs=table, concurrency_limit=2)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--public", action="store_true", help="bind 0.0.0.0 instead of 127.0.0.1")
    args = parser.parse_args()
    demo = build(MolgenPipeline.from_pretrained(args.model))
    demo.queue(max_size=32).launch(server_name="0.0.0.0" if args.public else "127.0.0.1", server_port=args.port)


if __name__ == "__main__":
    main()
