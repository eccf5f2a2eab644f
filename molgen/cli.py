"""The ``molgen`` command line. Each subcommand parses its arguments, calls library code, and reports."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from molgen.calibration import CALIBRATED
from molgen.config import SELECTIONS

__all__ = ["main"]

log = logging.getLogger("molgen")

TRAIN_PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
MODEL_HELP = "model directory (default: the shipped model, checkpoints/moses)"


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _model_dir(args: argparse.Namespace) -> Path:
    """``--model``, or the shipped model when it is not given (:data:`molgen.pipeline.DEFAULT_MODEL`; imported here,
    not at the top, so that ``molgen --help`` does not load torch)."""
    from molgen.pipeline import DEFAULT_MODEL

    return Path(args.model) if args.model else DEFAULT_MODEL


# --- featurize -------------------------------------------------------------------------------------


def cmd_featurize(args: argparse.Namespace) -> None:
    """Featurize a file into a dataset directory, by the domain's featurizer (:data:`FEATURIZERS`)."""
    FEATURIZERS[getattr(args, "domain", None) or "molecule"](args)


def _featurize_scenes(args: argparse.Namespace) -> None:
    """A JSON-lines file of scenes -> a dataset directory with its ``domain.json`` (the scene domain in ``--form``,
    its vocabulary fitted on the file's readable scenes unless ``--vocab MODEL`` gives a scene model's)."""
    from tqdm import tqdm

    from molgen.checkpoint import load_domain, save_domain
    from molgen.domains.scene import SceneDomain, as_scene, scene_to_raw_graph
    from molgen.featurize import featurize_items
    from molgen.io import BadRow, write_bad_rows
    from molgen.scenes.io import read_scene_rows

    if Path(args.input).suffix.lower() != ".jsonl":
        raise CLIError(f"{args.input}: scenes are read from JSON lines (.jsonl, one scene per line; `molgen scenes generate` writes them)")
    rows = list(read_scene_rows(args.input))
    if args.limit:
        rows = _take_shuffled(rows, args.limit, args.seed)
    if args.vocab:
        domain = load_domain(Path(args.vocab) / "domain.json" if Path(args.vocab).is_dir() else Path(args.vocab))
        if domain.name != "scene" or domain.form != args.form:
            raise CLIError(f"--vocab {args.vocab}: a {domain.name} domain{'' if domain.name != 'scene' else ' in ' + domain.form + ' form'}, not scenes in {args.form} form")
    else:
        readable = []
        for row in rows:
            if isinstance(row, BadRow):
                continue
            try:
                readable.append(scene_to_raw_graph(as_scene(row.smiles), args.form)[1])
            except ValueError:
                pass  # reported as a bad row below, by the domain
        if not readable:
            raise CLIError(f"{args.input}: no readable scene to fit a vocabulary on")
        domain = SceneDomain.fit(readable, form=args.form)
    with tqdm(desc=f"featurizing {Path(args.input).name}", unit="scene", disable=args.quiet) as bar:
        result = featurize_items(rows, domain, progress=bar.update)
    out = Path(args.out)
    report = {**result.report(), "source": str(args.input), "limit": args.limit, "seed": args.seed, "domain": "scene", "form": args.form}
    result.dataset.save(out, report=report)
    save_domain(domain, out / "domain.json")
    write_bad_rows(result.bad_rows, out / "bad_rows.tsv")
    _report_bad_rows(result.bad_rows, out)
    print(f"featurized {len(result.dataset)} of {result.n_read} scenes into {out} ({len(result.bad_rows)} bad rows skipped)")


def _report_bad_rows(bad_rows: list, out: Path) -> None:
    for bad in bad_rows[:10]:
        print(f"skipped {bad}", file=sys.stderr)
    if len(bad_rows) > 10:
        print(f"... and {len(bad_rows) - 10} more (see {out / 'bad_rows.tsv'})", file=sys.stderr)


def _featurize_molecules(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from molgen.chem import StandardizeOptions
    from molgen.featurize import featurize_molecules
    from molgen.graph import Vocabulary
    from molgen.io import read_molecules, write_bad_rows

    vocab = None
    if args.vocab:
        vocab = Vocabulary.from_dict(_read_vocab(Path(args.vocab)))
    standardize = None
    if args.largest_fragment or args.neutralize or getattr(args, "normalize", False):
        standardize = StandardizeOptions(
            largest_fragment=args.largest_fragment, neutralize=args.neutralize, normalize=getattr(args, "normalize", False),
            standardizer=getattr(args, "standardizer", "chembl"),
        )  # fmt: skip
    stereo = getattr(args, "stereo", False) or None  # None: as --vocab's fields say
    if stereo and vocab is not None and vocab.node_fields != _stereo_fields():
        raise CLIError(f"--stereo with --vocab {args.vocab}: that vocabulary has no stereo labels (a model without stereo)")
    rows = read_molecules(args.input, smiles_column=args.smiles_column)
    if args.limit:
        rows = _take_shuffled(rows, args.limit, args.seed)
    with tqdm(desc=f"featurizing {Path(args.input).name}", unit="mol", disable=args.quiet) as bar:
        result = featurize_molecules(
            rows, vocab=vocab, standardize_with=standardize, workers=args.workers, progress=bar.update, hydrogens=args.hydrogens, stereo=stereo,
        )
    out = Path(args.out)
    report = {**result.report(), "source": str(args.input), "limit": args.limit, "seed": args.seed, "hydrogens": args.hydrogens,
              "stereo": bool(result.dataset.vocab.node_fields == _stereo_fields()),
              "standardize": standardize.to_dict() if standardize is not None else None}  # fmt: skip
    result.dataset.save(out, report=report)
    write_bad_rows(result.bad_rows, out / "bad_rows.tsv")
    _report_bad_rows(result.bad_rows, out)
    print(f"featurized {len(result.dataset)} of {result.n_read} molecules into {out} ({len(result.bad_rows)} bad rows skipped)")


def _stereo_fields() -> list[str]:
    from molgen.domains.molecule import node_fields

    return node_fields(True)


FEATURIZERS = {"molecule": _featurize_molecules, "scene": _featurize_scenes}
"""``--domain`` -> the function featurizing ``args.input`` into ``args.out``."""


def _read_vocab(path: Path) -> dict:
    """A vocabulary from a vocab.json, a featurized dataset directory, or a tokenizer checkpoint directory."""
    for candidate in (path, path / "vocab.json", path / "domain.json"):
        if candidate.is_file():
            data = json.loads(candidate.read_text())
            return data.get("vocab", data)
    raise CLIError(f"--vocab {path}: no vocab.json or domain.json there")


def _take_shuffled(rows, limit: int, seed: int):
    """A random subset of ``limit`` rows (reservoir sampling: files such as MOSES train are not shuffled)."""
    import random

    rng = random.Random(seed)
    reservoir: list = []
    bad = []
    n_good = 0
    for row in rows:
        if not hasattr(row, "smiles"):
            bad.append(row)
            continue
        if len(reservoir) < limit:
            reservoir.append(row)
        else:
            k = rng.randint(0, n_good)
            if k < limit:
                reservoir[k] = row
        n_good += 1
    rng.shuffle(reservoir)
    return bad + reservoir


# --- scenes generate -------------------------------------------------------------------------------


def cmd_scenes_generate(args: argparse.Namespace) -> None:
    """Write ``-n`` procedural CLEVR-style scenes of ``--seed`` as JSON lines (scene ``k`` of a seed is always the same)."""
    import json as json_module

    from molgen.scenes.generator import generate_scene

    _check_out(args)
    if args.n < 1:
        raise CLIError(f"-n {args.n}: ask for at least one scene")
    if Path(args.out).suffix.lower() != ".jsonl":
        raise CLIError(f"--out {args.out}: scenes are written as JSON lines; give a .jsonl file")
    bar = _progress(args.n, "generate", args.progress)
    with open(args.out, "w", encoding="utf-8") as out:
        for k in range(args.n):
            out.write(json_module.dumps(generate_scene(args.seed, args.start + k).to_json(), separators=(",", ":")) + "\n")
            bar.update(1)
    bar.close()
    print(f"wrote {args.n} scenes (seed {args.seed}, scenes {args.start}..{args.start + args.n - 1}) to {args.out}", file=sys.stderr)


def _scene_model_dir(args: argparse.Namespace) -> Path:
    """``--model``, or the shipped scene model, checkpoints/clevr."""
    from molgen.pipeline import DEFAULT_MODEL

    return Path(args.model) if args.model else DEFAULT_MODEL.parent / "clevr"


def _scene_pipeline(args: argparse.Namespace):
    import torch

    from molgen.pipeline import MolgenPipeline

    torch.set_num_threads(args.threads)
    pipe = MolgenPipeline.from_pretrained(_scene_model_dir(args), device=args.device)
    if pipe.domain.name != "scene":
        raise CLIError(f"--model {_scene_model_dir(args)}: a {pipe.domain.name} model; the scenes commands need a scene model (e.g. checkpoints/clevr)")
    return pipe


def _read_scenes(path: str, option: str) -> list:
    """Scenes of a .json file (one scene) or a .jsonl file (one per line); errors name the file and line."""
    import json as json_module

    from molgen.graph import DomainError
    from molgen.scenes.io import read_jsonl, scene_from_json

    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{option} {path}: no such file")
    try:
        if file.suffix.lower() == ".jsonl":
            scenes = read_jsonl(file)
        else:
            scenes = [scene_from_json(json_module.loads(file.read_text(encoding="utf-8")), str(file))]
    except json_module.JSONDecodeError as exc:
        raise CLIError(f"{option} {path}: not JSON ({exc.msg} at line {exc.lineno}); give a scene .json or a .jsonl of scenes") from None
    except DomainError as exc:
        raise CLIError(f"{option} {exc}") from None
    if not scenes:
        raise CLIError(f"{option} {path}: holds no scene")
    return scenes


def _write_designed(args: argparse.Namespace, jobs) -> None:
    """Write each (request text, designed scenes) of ``jobs`` as JSON lines; report how many satisfy their request."""
    import json as json_module

    total = satisfied = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for job, (request, designed) in enumerate(jobs):
            for d in designed:
                record = {
                    "index": total, "input": job, "request": request, "satisfied": d.satisfied, "unmet": d.unmet,
                    "drawn": d.drawn, "given": None if d.given is None else {str(k): v for k, v in d.given.items()},
                    "scene": d.scene.to_json(),
                }  # fmt: skip
                out.write(json_module.dumps(record, separators=(",", ":")) + "\n")
                total += 1
                satisfied += d.satisfied
    print(f"wrote {total} scenes to {args.out}: {satisfied} satisfy their request, {total - satisfied} do not", file=sys.stderr)


def _scene_designer(args: argparse.Namespace):
    from molgen.scenes.designer import SceneDesigner

    if args.n < 1:
        raise CLIError(f"-n {args.n}: ask for at least one scene")
    if Path(args.out).suffix.lower() != ".jsonl":
        raise CLIError(f"--out {args.out}: scenes are written as JSON lines; give a .jsonl file")
    try:
        return SceneDesigner(_scene_pipeline(args), candidates=args.candidates, rounds=args.rounds, guidance=args.guidance, repairs=args.repairs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def cmd_scenes_design(args: argparse.Namespace) -> None:
    """Scenes that satisfy a request ("2 red cubes; something left of a metal sphere")."""
    from molgen.scenes.constraints import parse_request

    _check_out(args)
    try:
        constraints = parse_request(args.request)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    designer = _scene_designer(args)
    try:
        designed = designer.generate(constraints, n=args.n, seed=args.seed)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    _write_designed(args, [(args.request, designed)])


def cmd_scenes_complete(args: argparse.Namespace) -> None:
    """Complete each partial scene of a file, keeping its objects and their relations exactly."""
    from molgen.scenes.constraints import parse_request

    _check_out(args)
    partials = _read_scenes(args.input, "input")
    try:
        constraints = parse_request(args.request) if args.request else []
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    designer = _scene_designer(args)

    def jobs():
        for k, partial in enumerate(partials):
            try:
                yield args.request or "", designer.complete(partial, constraints, n=args.n, seed=args.seed + k)
            except ValueError as exc:
                raise CLIError(f"{args.input}: scene {k + 1}: {exc}") from None

    _write_designed(args, jobs())


def cmd_scenes_nearest(args: argparse.Namespace) -> None:
    """The k candidate scenes nearest each query scene by latent similarity."""
    import json as json_module

    _check_out(args)
    queries = _read_scenes(args.queries, "queries")
    candidates = _read_scenes(args.candidates, "--candidates")
    if args.k < 1:
        raise CLIError(f"-k {args.k}: ask for at least one neighbour")
    pipe = _scene_pipeline(args)
    try:
        hits = pipe.nearest(queries, candidates, k=min(args.k, len(candidates)), metric=args.metric)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    with open(args.out, "w", encoding="utf-8") as out:
        for q, row in enumerate(hits):
            neighbours = [{"candidate": h.index, "distance": round(h.distance, 6)} for h in row]
            out.write(json_module.dumps({"query": q, "neighbours": neighbours}, separators=(",", ":")) + "\n")
    print(f"wrote the {min(args.k, len(candidates))} nearest of {len(candidates)} candidates for {len(queries)} queries to {args.out} ({args.metric} distance)", file=sys.stderr)


# --- train tokenizer -------------------------------------------------------------------------------


def _dataset_for_training(
    path: Path, cache: Path, args: argparse.Namespace, vocab_dir: Path | None = None, hydrogens: str = "explicit",
    domain: str = "molecule", form: str = "sparse",
):  # fmt: skip
    """A featurized dataset directory is used as it is; a molecule file (or, with ``domain="scene"``, a JSON-lines
    scene file in ``form``) is featurized into ``cache`` first (with the vocabulary found in ``vocab_dir``, if
    given: validation data must share the training vocabulary)."""
    from molgen.dataset import GraphDataset

    if path.is_dir():
        cache = path
    elif not (cache / "graphs.npz").exists():
        featurize_args = argparse.Namespace(
            input=str(path), out=str(cache), smiles_column=args.smiles_column,
            vocab=str(vocab_dir) if vocab_dir else None, limit=None, seed=0, workers=None,
            largest_fragment=False, neutralize=False, quiet=not args.progress, hydrogens=hydrogens,
            domain=domain, form=form, stereo=getattr(args, "stereo", False) and vocab_dir is None,
        )  # fmt: skip
        cmd_featurize(featurize_args)
    return GraphDataset.load(cache)


def _training_domain(data_dir: Path, vocab, args: argparse.Namespace):
    """The domain a tokenizer is trained for: the one the featurized data says (its ``domain.json``, written for every
    domain but molecules), else molecules with ``--hydrogens``."""
    from molgen.checkpoint import load_domain

    if (data_dir / "domain.json").exists():
        domain = load_domain(data_dir / "domain.json")
        if domain.vocab.to_dict() != vocab.to_dict():
            raise CLIError(f"{data_dir}: its domain.json and vocab.json disagree (featurize it again)")
        return domain
    if args.domain != "molecule":
        raise CLIError(f"{data_dir}: a featurized {args.domain} dataset has a domain.json; this one has none (featurize it again)")
    from molgen.domains.molecule import MoleculeDomain

    return MoleculeDomain(vocab, hydrogens=args.hydrogens)


def _index_or_none(values: list[int], value: int, offset: int = 0) -> int | None:
    return values.index(value) + offset if value in values else None


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from molgen.checkpoint import load_domain, load_tokenizer
    from molgen.tokenizer.config import TokenizerConfig
    from molgen.tokenizer.training import TrainSettings, train_tokenizer

    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_path = Path(args.data)
    train_cache = train_path if train_path.is_dir() else run_dir / "data" / "train"
    kind = {"domain": args.domain, "form": args.form}
    train = _dataset_for_training(train_path, train_cache, args, hydrogens=args.hydrogens, **kind)
    val = None
    if args.val:
        val = _dataset_for_training(Path(args.val), run_dir / "data" / "val", args, vocab_dir=train_cache, hydrogens=args.hydrogens, **kind)
        if val.vocab.to_dict() != train.vocab.to_dict():
            raise CLIError(f"--val {args.val}: its vocabulary differs from the training data's; featurize it with --vocab")
    if args.limit:
        import numpy as np

        train = train.subset(np.random.default_rng(args.seed).permutation(len(train))[: args.limit])
    config_path = run_dir / "model" / "tokenizer" / "config.json"
    init_from = init_from_info = label_maps = None
    if args.init_from:
        init_from = load_tokenizer(Path(args.init_from) / "tokenizer")
        theirs, ours = load_domain(Path(args.init_from) / "domain.json").vocab, train.vocab
        # Labels are matched by value: the data may add elements, charges, bond labels (e.g. aromatic bonds or E/Z)
        # and fields after the model's (chirality), learned from where the model stands; the model's own fields come first.
        if ours.node_fields[: len(theirs.node_fields)] != theirs.node_fields:
            raise CLIError(
                f"--init-from {args.init_from}: its node fields {theirs.node_fields} are not the first of the training "
                f"data's {ours.node_fields}"
            )
        lacking = [f"{field} {sorted(set(old) - set(new))}" for field, old, new in zip(theirs.node_fields, theirs.node_values, ours.node_values, strict=False) if set(old) - set(new)]
        if set(theirs.edge_values) - set(ours.edge_values):
            lacking.append(f"{theirs.edge_field} {sorted(set(theirs.edge_values) - set(ours.edge_values))}")
        if lacking:
            raise CLIError(
                f"--init-from {args.init_from}: its vocabulary differs from the training data's, which lacks labels the model "
                f"reads ({'; '.join(lacking)}): the fine-tuned model would no longer read them; featurize with --vocab {args.init_from}"
            )
        node_rows = [[_index_or_none(old, v) for v in new] for old, new in zip(theirs.node_values, ours.node_values, strict=False)]
        edge_rows = [0, *(_index_or_none(theirs.edge_values, v, offset=1) for v in ours.edge_values)]
        max_nodes = max(init_from.config.max_nodes, args.max_nodes or int(train.num_nodes.max()) + 8)
        config = TokenizerConfig(**{
            **init_from.config.to_dict(), "node_vocab_sizes": ours.node_sizes, "edge_vocab_size": ours.edge_size, "max_nodes": max_nodes,
            # on wider chemistry (new codes anyway) the encoder learns the embedding of each node's edges, from zero
            "incident_edges": init_from.config.incident_edges or (theirs.to_dict() != ours.to_dict() and not args.freeze_encoder),
        })
        label_maps = {"node_rows": node_rows, "edge_rows": edge_rows}
        if args.decoder_layers is not None and args.decoder_layers != config.decoder_layers:
            # deepen the decoder (the extra layers start as identities; see load_deepening)
            config = TokenizerConfig(**{**config.to_dict(), "decoder_layers": args.decoder_layers})
        previous = Path(args.init_from) / "tokenizer" / "training.json"
        init_from_info = {"path": str(args.init_from), "training": json.loads(previous.read_text()) if previous.exists() else None}
    elif config_path.exists() and args.resume:
        config = load_tokenizer(config_path.parent).config  # resuming: the network must keep its shape
    else:
        max_nodes = int(max(train.num_nodes.max(), val.num_nodes.max() if val is not None else 0))
        domain = _training_domain(train_cache, train.vocab, args)
        config = TokenizerConfig(
            node_vocab_sizes=train.vocab.node_sizes,
            edge_vocab_size=train.vocab.edge_size,
            max_nodes=args.max_nodes or max_nodes + 8,
            bottleneck=args.bottleneck,
            latent_dim=args.latent_dim,
            fsq_levels=[int(v) for v in args.fsq_levels.split(",")],
            d_model=args.d_model,
            n_heads=args.heads,
            encoder_layers=args.encoder_layers,
            decoder_layers=args.decoder_layers or 3,
            edge_hidden=args.edge_hidden,
            directed_edges=getattr(domain, "directed_edges", False),
            # orders the edge labels spell out, given to the encoder as closures (sparse scenes); none for molecules
            encoder_orders=domain.encoder_orders() if hasattr(domain, "encoder_orders") else [],
            incident_edges=True,
        )
    if args.freeze_encoder and not (args.init_from or (config_path.exists() and args.resume)):
        raise CLIError("--freeze-encoder needs a trained encoder: give --init-from MODEL (or resume a run)")
    settings = TrainSettings(kl_weight=args.kl_weight, latent_noise=args.latent_noise, freeze_encoder=args.freeze_encoder, **_trainer_settings(args))
    domain_config = _training_domain(train_cache, train.vocab, args).to_config()
    module = train_tokenizer(
        train, run_dir, config, settings, val=val, domain_config=domain_config, resume=args.resume, init_from=init_from,
        init_from_info=init_from_info, label_maps=label_maps,
    )
    if module.trainer.is_global_zero:
        print(f"trained for {module.train_seconds():.0f} s in total; model directory: {run_dir / 'model'}")


# --- train prior -----------------------------------------------------------------------------------


def _latents_for_training(args: argparse.Namespace, run_dir: Path):
    """Encode the training data with the model's tokenizer (cached; a cache from another tokenizer is redone)
    and compute its conditioning properties."""
    from molgen.checkpoint import load_domain, load_tokenizer
    from molgen.latents import LatentDataset, compute_property_table, encode_dataset, tokenizer_fingerprint

    model_dir = Path(args.model)
    tokenizer = load_tokenizer(model_dir / "tokenizer")
    domain = load_domain(model_dir / "domain.json")
    cache = Path(args.latents) if args.latents else run_dir / "latents"
    stale = None
    if (cache / "latents.npz").exists():
        latents = LatentDataset.load(cache)
        if latents.tokenizer == tokenizer_fingerprint(tokenizer):
            _label_more(latents, cache, domain, args, run_dir)
            return latents, domain
        log.warning("%s was encoded by another tokenizer; encoding again", cache)
        stale = latents
    graphs = _graphs_for_model(args, run_dir, model_dir, domain)
    if graphs.vocab.to_dict() != domain.vocab.to_dict():
        raise CLIError(f"{args.data}: its vocabulary differs from the tokenizer's; featurize it with --vocab {model_dir}")
    bar = _progress(len(graphs), "encode", args.progress)
    latents = encode_dataset(tokenizer, graphs, progress=bar.update)
    bar.close()
    names = list(getattr(domain, "property_names", ()))
    if stale is not None and stale.property_names == names and stale.items and stale.items == latents.items:
        # Properties belong to the molecules, not to the tokenizer: keep the ones already computed for the same
        # molecules in the same order (e.g. after an encoder fine-tune).
        log.info("reusing the property table of the earlier cache (%d graphs)", len(latents))
        latents.properties, latents.property_names = stale.properties, names
    elif names:
        limit = args.property_limit
        bar = _progress(min(limit or len(graphs), len(graphs)), "properties", args.progress)
        latents.properties = compute_property_table(domain, graphs.items, names, limit=limit, seed=args.seed, progress=bar.update)
        latents.property_names = names
        bar.close()
    latents.save(cache)
    return latents, domain


def _graphs_for_model(args: argparse.Namespace, run_dir: Path, model_dir: Path, domain):
    """The training data (``args.data``) as graphs in the model's vocabulary and hydrogens (a .smi/.csv/.sdf file
    is featurized into RUN/data/train first)."""
    data_path = Path(args.data)
    cache = data_path if data_path.is_dir() else run_dir / "data" / "train"
    return _dataset_for_training(
        data_path, cache, args, vocab_dir=model_dir, hydrogens=getattr(domain, "hydrogens", "explicit"), domain=domain.name,
        form=getattr(domain, "form", "sparse"),
    )  # fmt: skip


def _label_more(latents, cache: Path, domain, args: argparse.Namespace, run_dir: Path) -> None:
    """A cached latent set with properties for fewer graphs than ``--property-limit`` asks (all, without it):
    compute the missing ones (the known ones are kept) and save the cache if any were added."""
    import numpy as np

    from molgen.latents import compute_property_table, items_fingerprint

    names = list(getattr(domain, "property_names", ()))
    if not names or latents.property_names != names or not latents.items:
        return
    wanted = len(latents) if args.property_limit is None else min(args.property_limit, len(latents))
    labelled = int((~np.isnan(latents.properties).all(1)).sum())
    if labelled >= wanted:
        return
    graphs = _graphs_for_model(args, run_dir, Path(args.model), domain)
    if items_fingerprint(graphs.items) != latents.items:
        log.warning("%s holds other molecules than %s; its properties are not completed", cache, args.data)
        return
    log.info("%s: properties known for %d graphs, %d asked for; computing the rest", cache, labelled, wanted)
    bar = _progress(wanted - labelled, "properties", args.progress)
    table = compute_property_table(domain, graphs.items, names, limit=wanted, seed=args.seed, progress=bar.update, existing=latents.properties)
    bar.close()
    if int((~np.isnan(table).all(1)).sum()) > labelled:  # rows no molecule could be read for stay unknown, unsaved
        latents.properties = table
        latents.save(cache)


def _progress(total: int, what: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="graph", disable=not enabled, file=sys.stderr)


def cmd_train_prior(args: argparse.Namespace) -> None:
    import shutil

    import numpy as np

    from molgen.checkpoint import load_prior, save_domain
    from molgen.prior.config import CODE_ARCHITECTURES, PriorConfig
    from molgen.prior.training import DATA_STATISTICS, SAMPLING_DEFAULTS, PriorTrainSettings, prior_config_from_data, train_prior

    if args.labelled_share is not None and not 0 < args.labelled_share < 1:
        raise CLIError(f"--labelled-share {args.labelled_share}: must be strictly between 0 and 1 (the share of training rows with properties)")
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    latents, domain = _latents_for_training(args, run_dir)
    if args.limit:
        latents = latents.subset(np.random.default_rng(args.seed).permutation(len(latents))[: args.limit])
    tokenizer_dir = Path(args.model) / "tokenizer"
    max_nodes = json.loads((tokenizer_dir / "config.json").read_text())["max_nodes"]
    config_path = run_dir / "model" / "prior" / "config.json"
    init_from = None
    if args.init_from:
        init_from = load_prior(Path(args.init_from) / "prior")
        # grow it if asked: more layers or relative-position biases (they start as no-ops; see load_growing)
        grown = {"layers": args.layers, "relative_positions": args.relative_positions}
        # normalisation and size statistics come from the data trained on now (the same, unless the latents
        # are another tokenizer's: a prior carried over to a fine-tuned tokenizer)
        measured = prior_config_from_data(latents, max_nodes).to_dict()
        base = init_from.config.to_dict()
        if args.architecture is not None and args.architecture != base["architecture"]:
            if {args.architecture, base["architecture"]} != set(CODE_ARCHITECTURES):
                raise CLIError(f"--architecture {args.architecture} --init-from {args.init_from}: a {base['architecture']} prior can start only "
                               f"another code prior ({' or '.join(CODE_ARCHITECTURES)}) of the same shape")  # fmt: skip
            # the other family, from the same trunk (load_across_families); its own sampling defaults
            defaults = {k: PriorConfig.__dataclass_fields__[k].default for k in SAMPLING_DEFAULTS}
            base.update(defaults, architecture=args.architecture, default_steps=args.default_steps)
        config = PriorConfig(**{
            **base, **{k: v for k, v in grown.items() if v is not None},
            **{k: measured[k] for k in DATA_STATISTICS},
        })  # fmt: skip
    elif config_path.exists() and args.resume:
        config = load_prior(config_path.parent).config  # resuming: same network and statistics
    else:
        architecture = args.architecture or "discrete"
        config = prior_config_from_data(
            latents, max_nodes, architecture=architecture, d_model=args.d_model, n_heads=args.heads, layers=args.layers or 4,
            relative_positions=max_nodes - 1 if args.relative_positions is None else args.relative_positions, default_steps=args.default_steps,
            **({"activation": "gelu"} if architecture in CODE_ARCHITECTURES else {}),
        )  # fmt: skip
    # The exported model directory is complete: the tokenizer and domain it was trained with, and the prior.
    model_out = run_dir / "model"
    if not (model_out / "tokenizer").exists():
        shutil.copytree(tokenizer_dir, model_out / "tokenizer")
        save_domain(domain, model_out / "domain.json")
    settings = PriorTrainSettings(
        ema_decay=args.ema_decay, drop_all=args.drop_all, drop_each=args.drop_each, time_sampling=args.time_sampling,
        labelled_share=args.labelled_share, **_trainer_settings(args),
    )  # fmt: skip
    extra: dict = {"tokenizer": str(args.model)}
    if args.init_from:  # the run it continues, so training time adds up over the chain (benchmarks.report)
        extra["initialized_from"] = {"path": str(args.init_from), "training": _training_record(Path(args.init_from) / "prior")}
    module = train_prior(latents, run_dir, config, settings, resume=args.resume, init_from=init_from, export_extra=extra)
    if module.trainer.is_global_zero:
        print(f"trained for {module.train_seconds():.0f} s in total; model directory: {model_out}")


def _prior_with_properties(model: str, why: str):
    """--model's prior config, which must exist, be discrete and have properties (for the networks that predict them
    and choose among its samples)."""
    from molgen.checkpoint import load_prior

    if not (Path(model) / "prior" / "config.json").exists():
        raise CLIError(f"--model {model}: no prior/ in it; {why}")
    config = load_prior(Path(model) / "prior").config
    if config.architecture != "discrete":
        raise CLIError(f"--model {model}: its prior is {config.architecture!r}; predictors and judges serve a discrete prior only")
    if not config.property_names:
        raise CLIError(f"--model {model}: its prior has no properties to predict")
    return config


def cmd_train_predictor(args: argparse.Namespace) -> None:
    import numpy as np

    from molgen.checkpoint import load_predictor
    from molgen.prior.predictor import PredictorConfig
    from molgen.prior.training import PredictorTrainSettings, train_predictor

    model_dir = Path(args.model)
    prior_config = _prior_with_properties(args.model, "a property predictor is trained for a prior's latents")
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    latents, _ = _latents_for_training(args, run_dir)
    if latents.property_names != prior_config.property_names:
        raise CLIError(f"the latent cache's properties {latents.property_names} are not the prior's {prior_config.property_names}")
    if args.own_samples < 0:
        raise CLIError(f"--own-samples {args.own_samples}: must be >= 0 (0: none)")
    init_from = _predictor_to_start_from(args.init_from, prior_config) if args.init_from else None
    known = np.flatnonzero(~np.isnan(latents.properties).all(1))  # graphs whose properties were computed
    if len(known) < len(latents):
        log.warning("training on the %d of %d graphs with computed properties (see --property-limit)", len(known), len(latents))
        latents = latents.subset(known)
    if args.limit:
        latents = latents.subset(np.random.default_rng(args.seed).permutation(len(latents))[: args.limit])
    if args.own_samples:
        from molgen.latents import LatentDataset

        own, _ = _own_samples(args, run_dir, model_dir, latents)
        labelled = np.flatnonzero(~np.isnan(own.properties).all(1))  # samples that decode to a molecule
        log.warning("training on %d graphs of the data and %d of the model's own samples (%d did not decode)", len(latents), len(labelled), len(own) - len(labelled))
        latents = LatentDataset.concat([latents, own.subset(labelled)])
    config_path = run_dir / "model" / "predictor" / "config.json"
    if config_path.exists() and args.resume:
        config = load_predictor(config_path.parent).config  # resuming: the network must keep its shape
    elif init_from is not None:
        config = init_from.config  # fine-tuning: the network keeps the shape of the one it starts from
    else:
        config = PredictorConfig.for_prior(prior_config, d_model=args.d_model, n_heads=args.heads, layers=args.layers,
                                           relative_positions=prior_config.relative_positions)  # fmt: skip
    settings = PredictorTrainSettings(**_trainer_settings(args))
    extra = {"model": str(args.model), "init_from": args.init_from, "own_samples": args.own_samples and {
        "samples": args.own_samples, "targets": args.own_sample_targets, "guidance_scale": args.own_sample_guidance, "seed": args.seed}}  # fmt: skip
    module = train_predictor(latents, run_dir, config, prior_config, settings, resume=args.resume, export_extra=extra, init_from=init_from)
    if module.trainer.is_global_zero:
        print(f"trained for {module.train_seconds():.0f} s in total; predictor: {run_dir / 'model' / 'predictor'}")


def cmd_train_judge(args: argparse.Namespace) -> None:
    import numpy as np

    from molgen.checkpoint import load_judge, load_tokenizer
    from molgen.dataset import GraphDataset
    from molgen.judge.model import JudgeConfig
    from molgen.judge.training import JudgeTrainSettings, LabelledGraphs, train_judge

    model_dir = Path(args.model)
    prior_config = _prior_with_properties(args.model, "a judge chooses among a prior's candidates and predicts its properties")
    if args.own_samples < 0:
        raise CLIError(f"--own-samples {args.own_samples}: must be >= 0 (0: none)")
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    latents, domain = _latents_for_training(args, run_dir)  # the data's property table (and what own samples target)
    graphs = _graphs_for_model(args, run_dir, model_dir, domain)
    if len(graphs) != len(latents):
        raise CLIError(f"{args.data}: {len(graphs)} graphs but the latent cache has {len(latents)}; give the matching --latents or none")
    data = LabelledGraphs(graphs, latents.properties, list(latents.property_names))
    known = np.flatnonzero(~np.isnan(data.table).all(1))
    if len(known) < len(data):
        log.warning("training on the %d of %d graphs with computed properties (see --property-limit)", len(known), len(data))
        data = data.subset(known)
    if args.limit:
        data = data.subset(np.sort(np.random.default_rng(args.seed).permutation(len(data))[: args.limit]))
    if args.own_samples:
        own, smiles = _own_samples(args, run_dir, model_dir, latents)
        rows = [i for i, item in enumerate(smiles) if item is not None and not np.isnan(own.properties[i]).all()]
        own_graphs = GraphDataset.from_graphs([domain.to_graph(smiles[i]) for i in rows], [smiles[i] for i in rows], domain.vocab)
        log.warning("training on %d graphs of the data and %d of the model's own samples (%d did not decode)", len(data), len(rows), len(smiles) - len(rows))
        data = LabelledGraphs.concat([data, LabelledGraphs(own_graphs, own.properties[rows], list(own.property_names))])
    config_path = run_dir / "model" / "judge" / "config.json"
    if config_path.exists() and args.resume:
        config = load_judge(config_path.parent).config  # resuming: the network must keep its shape
    else:
        tokenizer = load_tokenizer(model_dir / "tokenizer").config
        config = JudgeConfig.for_prior(
            prior_config, tokenizer.node_vocab_sizes, tokenizer.edge_vocab_size, d_model=args.d_model, layers=args.layers,
            walk_steps=args.walk_steps, default_candidates=args.default_candidates,
        )  # fmt: skip
    settings = JudgeTrainSettings(**_trainer_settings(args))
    extra = {"model": str(args.model), "own_samples": args.own_samples and {
        "samples": args.own_samples, "targets": args.own_sample_targets, "guidance_scale": args.own_sample_guidance, "seed": args.seed}}  # fmt: skip
    module = train_judge(data, run_dir, config, settings, resume=args.resume, export_extra=extra)
    if module.trainer.is_global_zero:
        print(f"trained for {module.train_seconds():.0f} s in total; judge: {run_dir / 'model' / 'judge'}")


def _predictor_to_start_from(path: str, prior_config):
    """--init-from: a model directory with a predictor/ (or a predictor directory) made for ``prior_config``."""
    from molgen.checkpoint import load_predictor

    directory = Path(path)
    directory = directory / "predictor" if (directory / "predictor" / "config.json").exists() else directory
    if not (directory / "config.json").exists():
        raise CLIError(f"--init-from {path}: no predictor in it (neither predictor/config.json nor config.json)")
    predictor = load_predictor(directory)
    try:
        predictor.config.check_fits(prior_config)
    except ValueError as exc:
        raise CLIError(f"--init-from {path}: {exc}") from exc
    return predictor


def _own_samples(args: argparse.Namespace, run_dir: Path, model_dir: Path, latents) -> tuple[object, list[str | None]]:
    """--own-samples N: N samples of the model at ``model_dir``, two in three conditioned on the
    --own-sample-targets of a random training graph (its own properties; with an MW target, a size drawn to fit it)
    with classifier-free guidance --own-sample-guidance, the rest unconditional; each decoded (valence-aware) and
    labelled with the properties of the molecule it decodes to (NaN when it decodes to none). The predictor then
    learns what the pipeline's outputs are, where the prior samples, not only what encoded data is. Written in
    chunks under RUN/own_samples, so an interrupted run draws only the missing ones. Returns the samples' latents
    (a LatentDataset with their properties) and the SMILES each decodes to (None: none)."""
    import numpy as np

    from molgen.design.targets import Target, sizes_for_weight
    from molgen.latents import LatentDataset, generated_dataset, tokenizer_fingerprint
    from molgen.pipeline import MolgenPipeline
    from molgen.sampling import SamplingConfig

    pipe = MolgenPipeline.from_pretrained(model_dir, device=args.device)
    config = pipe.prior.config
    names = [n.strip() for n in args.own_sample_targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in config.property_names]
    if unknown:
        raise CLIError(f"--own-sample-targets {args.own_sample_targets}: {', '.join(unknown)} not among the prior's properties {config.property_names}")
    columns = [latents.property_names.index(n) for n in names]
    complete = np.flatnonzero(~np.isnan(latents.properties[:, columns]).any(1))  # training graphs with every target known
    if len(complete) == 0:
        raise CLIError(f"--own-samples: no training graph has all of {names} computed to condition on")
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(complete, args.own_samples)
    sampling = SamplingConfig(guidance_scale=args.own_sample_guidance, batch_size=500)
    chunk, cache, parts, smiles = 2000, run_dir / "own_samples", [], []
    counts = np.asarray(config.num_nodes_counts, dtype=np.float64)
    size_p, k_mw = counts / counts.sum(), config.property_names.index("MW") if "MW" in names else None
    bar = _progress(args.own_samples, "own samples", args.progress)
    for k, lo in enumerate(range(0, args.own_samples, chunk)):
        part_dir = cache / f"{k:04d}"
        count = min(chunk, args.own_samples - lo)
        if (part_dir / "latents.npz").exists() and args.resume:
            part = LatentDataset.load(part_dir)
            parts.append(part)
            smiles.extend(_own_sample_smiles(pipe, part, part_dir))
            bar.update(count)
            continue
        conditions, sizes = [], []
        for j, row in enumerate(rows[lo : lo + count]):
            if (lo + j) % 3 == 2:  # unconditional: a size from the training distribution
                conditions.append({})
                sizes.append(int(rng.choice(len(counts), p=size_p)))
                continue
            target = {n: float(latents.properties[row, c]) for n, c in zip(names, columns, strict=True)}
            conditions.append(target)
            if k_mw is not None:
                fit = sizes_for_weight(Target("MW", target["MW"], target["MW"]), counts.tolist(), config.property_mean[k_mw], config.property_std[k_mw])
                sizes.append(int(rng.choice(len(fit), p=fit)))
            else:
                sizes.append(int(rng.choice(len(counts), p=size_p)))
        drawn = pipe.sample_latents(count, sampling, seed=args.seed * 100_003 + k, conditions=conditions, num_nodes=sizes)
        part = generated_dataset(drawn.z, drawn.mask, tokenizer_fingerprint(pipe.tokenizer))
        table = np.full((count, len(latents.property_names)), np.nan, dtype=np.float32)
        decoded = [m.smiles for m in pipe.decode(drawn, batch_size=500, decoding="valence")]
        for i, item in enumerate(decoded):
            if item is not None:
                values = pipe.domain.properties(item, latents.property_names)
                table[i] = [values[n] for n in latents.property_names]
        part.properties, part.property_names = table, list(latents.property_names)
        part.save(part_dir)
        (part_dir / "smiles.txt").write_text("".join(f"{item or ''}\n" for item in decoded), encoding="utf-8")
        parts.append(part)
        smiles.extend(decoded)
        bar.update(count)
    bar.close()
    return LatentDataset.concat(parts), smiles


def _own_sample_smiles(pipe, part, part_dir: Path) -> list[str | None]:
    """The SMILES a cached chunk of own samples decodes to (read from its smiles.txt; a chunk cached without one is
    decoded again, valence-aware as when it was labelled, and the file written)."""
    import numpy as np

    from molgen.records import Latents

    path = part_dir / "smiles.txt"
    if path.exists():
        lines = path.read_text(encoding="utf-8").split("\n")[: len(part)]
        return [line or None for line in lines]
    z, mask = part.dense(np.arange(len(part)))
    decoded = [m.smiles for m in pipe.decode(Latents(z, mask), batch_size=500, decoding="valence")]
    path.write_text("".join(f"{item or ''}\n" for item in decoded), encoding="utf-8")
    return decoded


def _training_record(directory: Path) -> dict | None:
    path = directory / "training.json"
    return json.loads(path.read_text()) if path.exists() else None


def _devices(text: str):
    return int(text) if text.isdigit() else text


# --- reconstruct -----------------------------------------------------------------------------------


def cmd_reconstruct(args: argparse.Namespace) -> None:
    import csv

    from tqdm import tqdm

    from molgen.io import BadRow, read_molecules
    from molgen.pipeline import MolgenPipeline

    pipe = MolgenPipeline.from_pretrained(_model_dir(args), device=args.device)
    if args.smiles:
        rows = [("argument", s) for s in args.smiles]
    elif args.input:
        rows, bad = [], 0
        for row in read_molecules(args.input, smiles_column=args.smiles_column):
            if isinstance(row, BadRow):
                print(f"skipped {row}", file=sys.stderr)
                bad += 1
            else:
                rows.append((row.location, row.smiles))
    else:
        raise CLIError("give an input file or --smiles")
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else None
    writer = csv.writer(out) if out else None
    if writer:
        writer.writerow(["location", "input", "canonical", "reconstructed", "exact", "error"])
    else:
        print("input\treconstructed\tresult")
    n_exact = n_failed = 0
    try:
        results = pipe.reconstruct([s for _, s in rows], batch_size=args.batch_size, decoding=args.decoding)
        for (location, _), r in tqdm(zip(rows, results), total=len(rows), disable=not args.out, unit="mol"):
            n_exact += r.exact
            n_failed += r.canonical is None
            if writer:
                writer.writerow([location, r.input, r.canonical or "", r.reconstructed or "", int(r.exact), r.error or ""])
                out.flush()
            else:
                print(f"{r.input}\t{r.reconstructed or '-'}\t{_status(r)}")
            if r.canonical is None and writer:
                print(f"skipped {location}: {r.error}", file=sys.stderr)
    finally:
        if out:
            out.close()
    n_ok = len(rows) - n_failed
    rate = n_exact / n_ok if n_ok else 0.0
    print(f"exact reconstruction: {n_exact}/{n_ok} ({100 * rate:.2f}%); {n_failed} inputs could not be encoded")


def _status(r) -> str:
    if r.canonical is None:
        return f"bad input: {r.error}"
    if r.reconstructed is None:
        return f"decoded to an invalid molecule: {r.error}"
    return "exact" if r.exact else "different molecule"


# --- sample --------------------------------------------------------------------------------------------


def _parse_conditions(items: list[str] | None) -> dict[str, float]:
    conditions = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            conditions[name.strip()] = float(value)
        except ValueError:
            raise CLIError(f"--condition {item!r}: expected NAME=VALUE with a number, e.g. QED=0.8") from None
        if not sep or not name.strip():
            raise CLIError(f"--condition {item!r}: expected NAME=VALUE, e.g. QED=0.8")
    return conditions


def _targets_table(args: argparse.Namespace, pipe) -> tuple[list[str], list, int]:
    """``--conditions-file``: the property columns, the good rows (each repeated ``--per-row`` times, in order)
    and how many bad rows were reported (on stderr, each with its line and what is wrong)."""
    from molgen.io import BadRow, read_targets

    if pipe.prior is None or not pipe.prior.config.property_names:
        raise CLIError(f"--conditions-file: the model {_model_dir(args)} has no property conditioning")
    columns, rows = read_targets(args.conditions_file, list(pipe.prior.config.property_names))
    good, bad = [], 0
    for row in rows:
        if isinstance(row, BadRow):
            bad += 1
            print(f"{args.conditions_file}: skipped {row}", file=sys.stderr)
        else:
            good.extend([row] * args.per_row)
    if not good:
        raise CLIError(f"{args.conditions_file}: no usable rows ({bad} bad)")
    return columns, good, bad  # with a num_nodes column every good row has a size (else it is a bad row)


def _check_out(args: argparse.Namespace) -> None:
    """Refuse, before any work, to replace an existing ``--out`` unless ``--overwrite`` (or ``--resume``) says so."""
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"--out {out}: is a directory; give a file (.csv, .sdf or .smi)")
    resume = getattr(args, "resume", False)
    if resume and args.overwrite:
        raise CLIError("--resume and --overwrite: choose one (continue the file, or replace it)")
    if out.exists() and not (args.overwrite or resume):
        more = ", or --resume to continue an interrupted run" if hasattr(args, "resume") else ""
        raise CLIError(f"--out {out}: exists; add --overwrite to replace it{more}")


def cmd_sample(args: argparse.Namespace) -> None:
    from molgen.io import item_writer
    from molgen.pipeline import DEFAULT_PRECISION, MolgenPipeline
    from molgen.sampling import SamplingConfig

    _check_out(args)
    if args.conditions_file:
        if args.n is not None:
            raise CLIError("-n with --conditions-file: the table gives the samples (one per row; more with --per-row K)")
        if args.condition or args.num_nodes is not None:
            raise CLIError("--condition / --num-nodes with --conditions-file: put the targets and sizes in the table's columns")
        if args.per_row < 1:
            raise CLIError(f"--per-row {args.per_row}: must be at least 1")
    elif args.n is None:
        raise CLIError("give -n N (number of samples) or --conditions-file TABLE.csv (one sample per row)")
    elif args.n < 1:
        raise CLIError(f"-n {args.n}: ask for at least one molecule")
    conditions = _parse_conditions(args.condition)
    config = SamplingConfig(
        temperature=args.temperature, guidance_scale=args.guidance, decoding=args.decoding, properties=args.properties,
        batch_size=args.batch_size, top_p=args.top_p, repairs=args.repairs, property_guidance=args.property_guidance,
        candidates=args.candidates, selection=args.selection, calibrated=CALIBRATED[args.calibration], steps=args.steps,
        sampler=args.sampler,
    )  # fmt: skip
    pipe = MolgenPipeline.from_pretrained(_model_dir(args), device=args.device, precision=args.precision or DEFAULT_PRECISION)
    names = list(getattr(pipe.domain, "property_names", ())) if args.properties else []
    writer_class, resume_point = item_writer(pipe.domain.name)  # molecules: .csv/.sdf/.smi; scenes: .jsonl
    n, num_nodes, extra_columns, extras, bad_rows = args.n, args.num_nodes, [], None, 0
    if args.conditions_file:
        columns, rows, bad_rows = _targets_table(args, pipe)
        n, conditions = len(rows), [row.targets for row in rows]
        if rows[0].num_nodes is not None:
            num_nodes = [row.num_nodes for row in rows]
        extra_columns = ["row", *(f"target_{c}" for c in columns)]
        extras = [{"row": row.line, **{f"target_{c}": row.targets.get(c) for c in columns}} for row in rows]
    first, seen = 0, []
    if args.resume and Path(args.out).exists():
        first, seen = resume_point(args.out, names, extra_columns)
        if first > n:
            raise CLIError(f"--resume: {args.out} holds {first} samples, more than the {n} asked for (same arguments as the interrupted run?)")
        print(f"resuming {args.out}: {first} of {n} samples already written", file=sys.stderr)
    molecules = pipe.sample_iter(n, config, seed=args.seed, conditions=conditions or None, num_nodes=num_nodes, first=first, seen=seen)
    counts: dict[str, int] = {}
    bar = _progress(n - first, "sample", args.progress)
    try:
        with writer_class(args.out, names, extra_columns, append_from=first if args.resume and Path(args.out).exists() else None) as writer:
            for k, molecule in enumerate(molecules, start=first):
                writer.write(molecule.smiles, molecule.state, molecule.error, molecule.properties, None if extras is None else extras[k])
                counts[molecule.state] = counts.get(molecule.state, 0) + 1
                bar.update(1)
    finally:
        bar.close()
        total = sum(counts.values())
        summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("valid", "duplicate", "invalid"))
        skipped = f"; {bad_rows} bad row(s) of {args.conditions_file} skipped" if bad_rows else ""
        print(f"wrote {total} samples to {args.out}: {summary} ({args.decoding} decoding){skipped}", file=sys.stderr)


# --- calibrate -----------------------------------------------------------------------------------------


def cmd_calibrate(args: argparse.Namespace) -> None:
    import numpy as np

    from molgen.calibration import file_fingerprint, fit_calibration
    from molgen.io import BadRow, read_molecules
    from molgen.pipeline import MolgenPipeline

    for flag, value in (("--samples", args.samples), ("--data-size", args.data_size), ("--candidates", args.candidates)):
        if value < 1:
            raise CLIError(f"{flag} {value}: must be at least 1")
    model = _model_dir(args)
    pipe = MolgenPipeline.from_pretrained(model, device=args.device)
    if pipe.prior is None:
        raise CLIError(f"{model}: no prior/ to calibrate")
    rows = list(read_molecules(args.data, args.smiles_column))
    smiles = [row.smiles for row in rows if not isinstance(row, BadRow)]
    if not smiles:
        raise CLIError(f"{args.data}: no readable molecules")
    if len(smiles) < len(rows):
        log.warning("%s: %d unreadable record(s) skipped", args.data, len(rows) - len(smiles))
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(smiles))[: args.data_size])
    bar = _progress(args.samples, "sample", args.progress)
    try:
        calibration = fit_calibration(
            pipe, [smiles[i] for i in pick], args.samples, seed=args.seed, batch_size=args.batch_size, candidates=args.candidates,
            prior_fingerprint=file_fingerprint(model / "prior" / "model.safetensors"), progress=bar.update,
        )  # fmt: skip
    finally:
        bar.close()
    out = Path(args.out) if args.out else model / "calibration"
    calibration.save(out)
    print(f"wrote {out / 'config.json'}: {args.candidates} candidates per sample, matching {', '.join(calibration.properties)}", file=sys.stderr)
    for line in calibration.summary():
        print(f"  {line}", file=sys.stderr)


# --- evaluate ------------------------------------------------------------------------------------------


def _smiles_of(path: str, smiles_column: str | None) -> list[str | None]:
    """Every record of a molecule file, in order; unreadable or invalid records become None (counted invalid)."""
    from molgen.io import BadRow, read_molecules

    return [None if isinstance(row, BadRow) else row.smiles for row in read_molecules(path, smiles_column)]


def cmd_evaluate(args: argparse.Namespace) -> None:
    from molgen.metrics import NoveltyReference, ReferenceStats, compute_metrics, moses_references

    generated = _smiles_of(args.input, args.smiles_column)
    if not generated:
        raise CLIError(f"{args.input}: no molecules in the file")
    options = {"device": args.device, "n_jobs": args.jobs}
    if args.test:
        test = ReferenceStats.cached(_smiles_of(args.test, args.smiles_column), "user_test", **options)
        scaffolds = ReferenceStats.cached(_smiles_of(args.test_scaffolds, args.smiles_column), "user_test_scaffolds", **options) if args.test_scaffolds else None
        train = NoveltyReference.cached(_smiles_of(args.train, args.smiles_column), "user_train", n_jobs=args.jobs) if args.train else None
    else:
        if args.test_scaffolds or args.train:
            raise CLIError("--test-scaffolds and --train need --test (without them, MOSES' splits are used)")
        test, scaffolds, train = moses_references(**options)
    metrics = compute_metrics(generated, test, scaffolds, train, **options)
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        print(f"{name:<{width}}  {value:.4f}")
    print(f"(n = {len(generated):,} samples from {args.input})", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps({"input": str(args.input), "n": len(generated), "metrics": metrics}, indent=1))


# --- design ----------------------------------------------------------------------------------------------


def _parse_ranges(items: list[str] | None, option: str, allow_value: bool = True) -> dict:
    """``NAME=VALUE`` or ``NAME=LOW:HIGH`` items -> {name: value or (low, high)}."""
    parsed: dict = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        try:
            values = tuple(float(v) for v in text.split(":"))
        except ValueError:
            values = ()
        if not sep or not name.strip() or len(values) not in ((1, 2) if allow_value else (2,)):
            example = "QED=0.9 or MW=300:400" if allow_value else "MW=200:500"
            raise CLIError(f"{option} {item!r}: expected {'NAME=VALUE or ' if allow_value else ''}NAME=LOW:HIGH, e.g. {example}")
        parsed[name.strip()] = values[0] if len(values) == 1 else values
    return parsed


def _design_filters(args: argparse.Namespace):
    from molgen.design import Filters

    return Filters(
        alerts=args.alerts, sa_max=args.sa_max, windows=_parse_ranges(args.window, "--window", allow_value=False) or None,
        novelty=args.novelty, min_similarity=getattr(args, "min_similarity", None),
    )  # fmt: skip


def _design_inputs(args: argparse.Namespace, what: str) -> list[tuple[str, str]]:
    """(location, SMILES) of the inputs given as arguments or in ``--input`` (bad rows reported, skipped)."""
    from molgen.io import BadRow, read_molecules

    rows = [("argument", s) for s in args.smiles or []]
    if args.input:
        for row in read_molecules(args.input, smiles_column=args.smiles_column):
            if isinstance(row, BadRow):
                print(f"skipped {row}", file=sys.stderr)
            else:
                rows.append((row.location, row.smiles))
    if not rows:
        raise CLIError(f"give a {what} SMILES or --input FILE")
    return rows


def _write_design(args: argparse.Namespace, designer, batches) -> list:
    """Stream (input SMILES, results) batches to ``args.out``, returning the results; a bad input is reported
    and skipped."""
    from molgen.design import DesignInputError
    from molgen.io import MoleculeWriter

    counts: dict[str, int] = {}
    written = []
    extra = ["input", "similarity", "score", "alerts", "reasons"]
    with MoleculeWriter(args.out, designer.property_names, extra_columns=extra) as writer:
        for source, results in batches:
            try:
                for r in results:
                    writer.write(r.smiles, r.state, r.error, r.properties, {
                        "input": source, "similarity": r.similarity, "score": r.score,
                        "alerts": "; ".join(r.alerts), "reasons": "; ".join(r.reasons),
                    })  # fmt: skip
                    counts[r.state] = counts.get(r.state, 0) + 1
                    written.append(r)
            except DesignInputError as exc:
                if source is None:
                    raise
                print(f"skipped {source!r}: {exc}", file=sys.stderr)
                counts["bad input"] = counts.get("bad input", 0) + 1
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("valid", "rejected", "duplicate", "invalid", "bad input") if counts.get(k))
    print(f"wrote {writer.count} rows to {args.out}: {summary or 'nothing'}", file=sys.stderr)
    return written


def _designer(args: argparse.Namespace):
    from molgen.design import Designer
    from molgen.pipeline import DEFAULT_PRECISION

    _check_out(args)
    precision = args.precision or DEFAULT_PRECISION
    strict = {"largest_fragment": getattr(args, "largest_fragment", False), "from_nearest": getattr(args, "from_nearest", False)}
    if getattr(args, "normalize", False) or getattr(args, "neutralize", False):
        from molgen.chem import StandardizeOptions

        strict["standardize"] = StandardizeOptions(normalize=args.normalize, neutralize=args.neutralize, standardizer=args.standardizer)
    return Designer.from_pretrained(_model_dir(args), device=args.device, precision=precision, decoding=args.decoding, **strict)


def cmd_design_generate(args: argparse.Namespace) -> None:
    from molgen.design import target_report

    designer = _designer(args)
    targets = _parse_ranges(args.target, "--target")
    results = designer.generate_iter(
        args.n, seed=args.seed, steps=args.steps, targets=targets or None, guidance_scale=args.guidance, oversample=args.oversample,
        property_guidance=args.property_guidance, must_contain=args.must_contain or (), must_avoid=args.must_avoid or (), filters=_design_filters(args),
        candidates=args.candidates, selection=args.selection,
    )  # fmt: skip
    written = _write_design(args, designer, [(None, results)])
    for name, report in target_report(written, designer.parse_targets(targets)).items():
        print(f"{name}: MAE {report['mae']:.3g}, {report['in_range']:.0%} on target ({report['n']} molecules)", file=sys.stderr)


def cmd_design_analogs(args: argparse.Namespace) -> None:
    designer = _designer(args)
    options = {"similarity": args.similarity, "strength": args.strength, "seed": args.seed, "steps": args.steps,
               "must_contain": args.must_contain or (), "must_avoid": args.must_avoid or (), "filters": _design_filters(args),
               "new": not args.count_repeats, "max_attempts": args.max_attempts}  # fmt: skip
    rows = _design_inputs(args, "seed")
    _write_design(args, designer, ((s, designer.analogs_iter(s, args.n, **options)) for _, s in rows))


def _atom_count(text: str | None, option: str) -> int | tuple[int, int] | None:
    """``N`` or ``LOW:HIGH`` -> a count or a (low, high) range; None when not given."""
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.split(":"))
    except ValueError:
        values = ()
    if len(values) not in (1, 2):
        raise CLIError(f"{option} {text!r}: expected N or LOW:HIGH, e.g. 3:8")
    return values[0] if len(values) == 1 else values


def _inpainting_options(args: argparse.Namespace) -> dict:
    """Options shared by decorate, extend, link and morph."""
    return {"seed": args.seed, "steps": args.steps, "must_contain": args.must_contain or (), "must_avoid": args.must_avoid or (),
            "filters": _design_filters(args), "layout": args.layout}  # fmt: skip


def cmd_design_decorate(args: argparse.Namespace) -> None:
    options = {**_inpainting_options(args), "extra_atoms": _atom_count(args.extra_atoms, "--extra-atoms")}
    designer = _designer(args)
    rows = _design_inputs(args, "core")
    _write_design(args, designer, ((s, designer.decorate_iter(s, args.n, **options)) for _, s in rows))


def cmd_design_extend(args: argparse.Namespace) -> None:
    options = {**_inpainting_options(args), "extra_atoms": _atom_count(args.extra_atoms, "--extra-atoms")}
    designer = _designer(args)
    rows = _design_inputs(args, "motif")
    _write_design(args, designer, ((s, designer.extend_iter(s, args.n, **options)) for _, s in rows))


def cmd_design_link(args: argparse.Namespace) -> None:
    options = {**_inpainting_options(args), "linker_atoms": _atom_count(args.linker_atoms, "--linker-atoms")}
    designer = _designer(args)
    rows = _design_inputs(args, "fragment pair")
    _write_design(args, designer, ((s, designer.link_iter(s, args.n, **options)) for _, s in rows))


def cmd_design_morph(args: argparse.Namespace) -> None:
    options = {**_inpainting_options(args), "core_atoms": _atom_count(args.core_atoms, "--core-atoms")}
    designer = _designer(args)
    rows = _design_inputs(args, "molecule")
    _write_design(args, designer, ((s, designer.morph_iter(s, args.n, **options)) for _, s in rows))


def cmd_design_interpolate(args: argparse.Namespace) -> None:
    designer = _designer(args)
    results = designer.interpolate(args.smiles_a, args.smiles_b, args.points, filters=_design_filters(args), refine=args.refine, seed=args.seed)
    _write_design(args, designer, [(args.smiles_a, results)])


def cmd_design_optimize(args: argparse.Namespace) -> None:
    from molgen.design import objectives

    objective = _objective(args.objective, objectives)
    if args.history is not None and args.history.exists() and args.history.stat().st_size and not args.resume:
        raise CLIError(f"--history {str(args.history)!r} exists: give --resume to continue that run (its molecules are not scored again)")
    if args.resume and args.history is None:
        raise CLIError("--resume continues the run recorded in --history FILE: give one")
    designer = _designer(args)
    start = None
    if args.smiles or args.input:
        start = []
        for location, smiles in _design_inputs(args, "start"):
            problem = designer.check_smiles(smiles)
            if problem:
                print(f"skipped {location}: {problem}", file=sys.stderr)
            else:
                start.append(smiles)
        if not start:
            raise CLIError("none of the start molecules can be used (see above)")
    from tqdm import tqdm

    bar = tqdm(total=args.calls, desc="optimize", unit="call", disable=not args.progress, file=sys.stderr)

    def progress(used: int, total: int | None, best: float | None) -> None:
        bar.update(used - bar.n)
        if best is not None:
            bar.set_postfix(best=f"{best:.4f}")

    result = designer.optimize(
        objective, calls=args.calls, seconds=args.seconds, strategy=args.strategy, start=start, n=args.n, seed=args.seed,
        history=args.history, filters=_design_filters(args), must_contain=args.must_contain or (), must_avoid=args.must_avoid or (),
        reference=args.reference, progress=progress,
    )  # fmt: skip
    bar.close()
    last = result.trajectory[-1] if result.trajectory else None
    if last is not None:
        print(f"{last['calls']} objective calls in {last['seconds']:.0f} s: best {last['best_score']:.4f}, top-10 mean {last['top10_mean']:.4f}", file=sys.stderr)
    if result.stopped:
        print(f"stopped: {result.stopped}", file=sys.stderr)
    _write_design(args, designer, [(None, result.best if args.best_only else result.evaluated)])


OBJECTIVE_HELP = (
    "qed, plogp, similarity:SMILES, logp-window:LOW:HIGH, a .toml file of weighted scoring components "
    "(molgen.design.objectives.COMPONENTS) or a .py file defining objective(smiles) (one SMILES or a list)"
)


def _objective(text: str, objectives):
    """The objective named on the command line: a built-in name or a file."""
    if text.endswith((".toml", ".py")):
        return objectives.load(text)
    name, _, parameter = text.partition(":")
    factories = {"qed": objectives.qed, "plogp": objectives.penalized_logp, "similarity": objectives.similarity,
                 "logp-window": lambda p: objectives.logp_window(*(float(v) for v in p.split(":")))}  # fmt: skip
    if name not in factories or (name in ("similarity", "logp-window")) != bool(parameter):
        raise CLIError(f"--objective {text!r}: choose {OBJECTIVE_HELP}")
    return factories[name](parameter) if parameter else factories[name]()


def _add_design_parser(sub) -> None:
    """``molgen design generate|analogs|decorate|extend|link|morph|interpolate|optimize``."""
    design = sub.add_parser("design", help="guided design: targets, analogs, scaffolds, motifs, linkers, interpolation, optimisation")
    commands = design.add_subparsers(dest="design_command", required=True)

    def strict(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--largest-fragment", action="store_true", help=f"take the largest fragment of a {what} given with several (default: refuse it)")
        p.add_argument(
            "--from-nearest", action="store_true",
            help=f"design from the model's reconstruction of a {what} it does not reconstruct exactly (default: refuse it); reported on stderr",
        )  # fmt: skip
        p.add_argument("--normalize", action="store_true", help=f"normalise functional groups of each {what} first (e.g. N(=O)=O -> [N+](=O)[O-]); reported on stderr")
        p.add_argument("--neutralize", action="store_true", help=f"neutralise the charges of each {what} first where a neutral form exists; reported on stderr")
        p.add_argument(
            "--standardizer", choices=["chembl", "rdkit"], default="chembl",
            help="which library does --normalize and --neutralize: ChEMBL's structure pipeline (default) or RDKit's MolStandardize",
        )  # fmt: skip

    def common(p: argparse.ArgumentParser, inputs: str | None = None, whole: bool = True) -> None:
        """The options of every design command; ``inputs``: what its positional SMILES are; ``whole``: they are whole
        molecules (read strictly, optionally standardised), not cores or fragments with attachment points."""
        if inputs:
            p.add_argument("smiles", nargs="*", help=f"{inputs} SMILES (or give --input)")
            p.add_argument("--input", default=None, help=f".smi/.csv/.sdf file of {inputs}s (bad rows reported and skipped)")
            p.add_argument("--smiles-column", default=None)
        p.add_argument("--out", required=True, help="output .csv, .sdf or .smi (rows streamed; invalid and rejected kept)")
        p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
        if inputs and whole:
            strict(p, inputs)
        p.add_argument("--model", default=None, help=MODEL_HELP)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
        p.add_argument("--decoding", choices=["valence", "raw"], default="valence")
        p.add_argument("--device", default="auto")
        p.add_argument("--precision", default=None, help=PRECISION_HELP)
        p.add_argument("--must-contain", action="append", metavar="SMARTS", help="required substructure (repeatable)")
        p.add_argument("--must-avoid", action="append", metavar="SMARTS", help="forbidden substructure (repeatable)")
        p.add_argument("--alerts", action="store_true", help="reject molecules with structural alerts (PAINS, Brenk, NIH)")
        p.add_argument("--sa-max", type=float, default=None, help="reject molecules with SA score above this")
        p.add_argument("--window", action="append", metavar="NAME=LOW:HIGH", help="hard property window, e.g. MW=200:500 (repeatable)")
        p.add_argument("--novelty", action="store_true", help="reject molecules in MOSES train")

    p = commands.add_parser("generate", help="molecules toward property targets (classifier-free guidance)")
    common(p)
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--target", action="append", metavar="NAME=VALUE|LOW:HIGH", help="property target, e.g. QED=0.9 or MW=300:400")
    p.add_argument("--guidance", type=float, default=2.0, help="guidance scale (1: plain conditional)")
    p.add_argument("--oversample", type=int, default=1, help="sample K per molecule, keep the one nearest the targets (properties computed by RDKit)")
    p.add_argument("--candidates", type=int, default=None, help=CANDIDATES_HELP)
    p.add_argument("--selection", choices=SELECTIONS, default=None, help=SELECTION_HELP)
    p.add_argument(
        "--property-guidance", type=float, default=None,
        help=PROPERTY_GUIDANCE_HELP.replace("default 0: off", "default: the predictor's default_scale when there are targets (0 for the shipped model, which resamples instead: --candidates); 0: off"),
    )
    p.set_defaults(func=cmd_design_generate)

    p = commands.add_parser("analogs", help="neighbours of seed molecules (partial noising and re-denoising)")
    common(p, "seed")
    p.add_argument("-n", type=int, required=True, help="new analogs per seed (repeats of the seed or of earlier analogs are written as duplicates and do not count)")
    p.add_argument("--count-repeats", action="store_true", help="-n counts every sample, repeats included")
    p.add_argument("--max-attempts", type=int, default=None, help="samples per seed at most (default 10 x n)")
    p.add_argument("--similarity", type=float, default=0.5, help="mean Tanimoto to aim for, 0-1")
    p.add_argument("--strength", type=float, default=None, help="noise strength in (0, 1] instead of --similarity")
    p.add_argument("--min-similarity", type=float, default=None, help="reject analogs less similar than this")
    p.set_defaults(func=cmd_design_analogs)

    def inpainting(p: argparse.ArgumentParser, inputs: str, option: str, what: str, func, whole: bool = False) -> None:
        common(p, inputs, whole)
        p.add_argument("-n", type=int, required=True, help=f"attempts per {inputs}")
        p.add_argument(option, default=None, metavar="N|LOW:HIGH", help=what)
        p.add_argument("--layout", choices=["auto", "first", "last"], default="auto", help="kept tokens before or after the new atoms (auto: probe both)")
        p.set_defaults(func=func)

    inpainting(commands.add_parser("decorate", help="decorate cores ([*:1] attachment points, or a plain core)"), "core", "--extra-atoms",
               "atoms to add (default: from the training size distribution)", cmd_design_decorate)  # fmt: skip
    inpainting(
        commands.add_parser("extend", help="grow molecules from motifs: fragments with [*:1] attachment points where the molecule continues"),
        "motif", "--extra-atoms", "atoms to add (default: from the training size distribution)", cmd_design_extend,
    )  # fmt: skip
    inpainting(
        commands.add_parser("link", help="join two fragments by new atoms: each pair one SMILES, e.g. '[*:1]c1ccccc1.[*:2]C1CCNCC1'"),
        "fragment pair", "--linker-atoms", "atoms of the linker, >= 1 (default: whole molecules sized as in training)", cmd_design_link,
    )  # fmt: skip
    inpainting(
        commands.add_parser("morph", help="keep a molecule's side chains, design a new scaffold (Bemis-Murcko core) between them"),
        "molecule", "--core-atoms", "atoms of the new core (default: the scaffold's count +- 2)", cmd_design_morph, whole=True,
    )  # fmt: skip

    p = commands.add_parser("interpolate", help="molecules on the latent line between two molecules")
    strict(p, "molecule")
    common(p)
    p.add_argument("smiles_a")
    p.add_argument("smiles_b")
    p.add_argument("--points", type=int, default=8)
    p.add_argument("--refine", type=float, default=0.0, help="re-denoise inner points at this strength, [0, 1)")
    p.set_defaults(func=cmd_design_interpolate)

    p = commands.add_parser("optimize", help="maximise an objective within a budget of objective calls")
    common(p, "start")
    p.add_argument("--objective", required=True, help=OBJECTIVE_HELP)
    p.add_argument("--calls", type=int, default=1000, help="objective-call budget: distinct molecules scored (default 1000)")
    p.add_argument("--seconds", type=float, default=None, help="wall-clock budget in seconds (default: none)")
    p.add_argument("--strategy", default="mixed", choices=["mixed", "remask", "surrogate", "graph-ga"],
                   help="how proposals are made (default mixed: half model remasking, half graph GA; see the README)")  # fmt: skip
    p.add_argument("-n", type=int, default=64, help="molecules proposed per round")
    p.add_argument("--history", type=Path, default=None, help="CSV file every objective call is appended to as it is made")
    p.add_argument("--resume", action="store_true", help="continue the run recorded in --history (no molecule is scored twice)")
    p.add_argument("--reference", default=None, help="report similarity to this SMILES (with --min-similarity: a constraint)")
    p.add_argument("--min-similarity", type=float, default=None)
    p.add_argument("--best-only", action="store_true", help="write the molecules by score, best first (default: all scored, in call order)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_design_optimize)


PROPERTY_GUIDANCE_HELP = (
    "discrete prior: strength of guidance toward the targets by the model's property predictor, on top of --guidance: "
    "it tries its 32 likeliest codes before each atom (about 50x slower) (default 0: off; needs predictor/ in the model "
    "directory: molgen train predictor)"
)
STEPS_HELP = "set and masked priors: scheduler steps (default: the model's)"
PRECISION_HELP = (
    "how the prior networks run: fp32, bf16 (bfloat16 matrix products: sampling about 1.4x faster where the hardware "
    "has them, e.g. CPUs with AVX512-BF16 or AMX, GPUs; slower elsewhere) or auto (default: bf16 where native, else fp32)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="molgen", description="Generative design of molecules.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("featurize", help="molecule (or scene) file -> cached graph dataset (bad rows reported and skipped)")
    p.add_argument("input", help=".smi, .csv or .sdf file (optionally .gz); with --domain scene a .jsonl file of scenes")
    _add_domain_arguments(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--smiles-column", default=None, help="CSV column with SMILES (default: 'smiles', any case)")
    p.add_argument("--vocab", default=None, help="use this vocabulary (vocab.json, dataset dir or checkpoint dir)")
    p.add_argument("--limit", type=int, default=None, help="take a random subset of this many rows")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--largest-fragment", action="store_true", help="keep only the parent fragment (salts and solvents stripped)")
    p.add_argument("--normalize", action="store_true", help="normalise functional groups (e.g. N(=O)=O -> [N+](=O)[O-])")
    p.add_argument("--neutralize", action="store_true", help="neutralise charges where a neutral form exists (default: kept as given)")
    p.add_argument(
        "--standardizer", choices=["chembl", "rdkit"], default="chembl",
        help="which library standardises: ChEMBL's structure pipeline (default) or RDKit's MolStandardize",
    )  # fmt: skip
    p.add_argument(
        "--stereo", action="store_true",
        help="graphs carry tetrahedral centres and double-bond E/Z (for a model of chiral molecules; default: stereo marks are ignored)",
    )  # fmt: skip
    p.add_argument(
        "--hydrogens", choices=["explicit", "implicit"], default="explicit",
        help="implicit: also skip molecules whose hydrogens RDKit would not infer (for models built with implicit hydrogens)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_featurize)

    train = sub.add_parser("train", help="train a model component").add_subparsers(dest="component", required=True)
    p = train.add_parser("tokenizer", help="train the graph tokenizer (resumes from RUN_DIR/checkpoints/last.ckpt)")
    p.add_argument("data", help="featurized dataset directory, or a .smi/.csv/.sdf file (featurized first)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, exported model)")
    p.add_argument("--val", default=None, help="validation data (default: 2,000 held out from the training data)")
    p.add_argument("--smiles-column", default=None)
    p.add_argument("--limit", type=int, default=None, help="train on a random subset of this many graphs")
    p.add_argument(
        "--bottleneck", choices=["fsq", "gaussian"], default="fsq",
        help="fsq (default): one of a finite set of codes per atom, what the discrete prior draws; gaussian: a VAE's continuous tokens (set prior only)",
    )
    p.add_argument(
        "--hydrogens", choices=["implicit", "explicit"], default="implicit",
        help="implicit (default): molecules are rebuilt with RDKit's default valences, so a decoded graph is valid "
        "when its bonds fit; explicit: every atom's hydrogen count is part of the molecule",
    )
    p.add_argument(
        "--stereo", action="store_true",
        help="molecules given as a file: graphs carry tetrahedral centres and double-bond E/Z (a featurized directory says it itself)",
    )  # fmt: skip
    p.add_argument("--latent-dim", type=int, default=16, help="latent numbers per node (gaussian)")
    p.add_argument("--fsq-levels", default="8,8,8,5,5", help="FSQ levels per latent dim (fsq)")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--encoder-layers", type=int, default=3)
    p.add_argument("--decoder-layers", type=int, default=None, help="default 3; with --init-from: the model's, or more to deepen its decoder")
    p.add_argument("--edge-hidden", type=int, default=64)
    p.add_argument("--max-nodes", type=int, default=None, help="default: largest training graph + 8")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--latent-noise", type=float, default=0.0, help="train the decoder on latents plus noise of std up to this (robust decoding of prior samples)")
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder only, keeping the latent tokens (and a prior trained on them) valid")
    p.add_argument("--warmup-steps", type=int, default=500)
    _add_trainer_arguments(p)
    p.add_argument("--init-from", default=None, help="start from this model directory's tokenizer weights (fine-tune)")
    _add_domain_arguments(p)
    p.set_defaults(func=cmd_train_tokenizer)

    p = train.add_parser("prior", help="train the latent prior on a tokenizer's latents (resumes like the tokenizer)")
    _add_latent_data_arguments(
        p, model="model directory with the trained tokenizer (domain.json + tokenizer/)",
        out="run directory; RUN/model becomes a complete model directory",
    )
    p.add_argument(
        "--architecture", choices=["discrete", "set", "masked"], default=None,
        help="discrete (default, the shipped model's): token after token, each a choice among the codes of a quantised tokenizer "
        "(--bottleneck fsq), cross entropy; set: all tokens at once by flow matching (any tokenizer); masked: the same codes by "
        "masked discrete diffusion, drawn in --default-steps parallel steps with diffusers' AmusedScheduler (--bottleneck fsq). "
        "With --init-from: the model's own, or the other code family (discrete <-> masked), which starts from its trunk",
    )
    p.add_argument(
        "--labelled-share", type=float, default=None,
        help="repeat the training rows that have properties (see --property-limit) until they are about this share of the rows, "
        "so more batches teach the conditions (default: each row once)",
    )
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=None, help="transformer blocks (default 4; with --init-from: the model's, or more to deepen it)")
    p.add_argument(
        "--relative-positions", type=int, default=None,
        help="attention bias per token offset up to this (default: max_nodes - 1, every offset; 0: none; with --init-from: the model's, or add them)",
    )
    p.add_argument("--default-steps", type=int, default=20, help="set and masked priors: scheduler steps the model samples with unless told otherwise")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--drop-all", type=float, default=0.1, help="probability of dropping all conditions (guidance)")
    p.add_argument("--drop-each", type=float, default=0.3, help="probability of dropping each condition")
    p.add_argument(
        "--time-sampling", choices=["uniform", "logit_normal"], default="uniform",
        help="set prior: how training draws noise levels (logit_normal: more mid-noise training, as SD3)",
    )
    p.add_argument("--warmup-steps", type=int, default=500)
    _add_trainer_arguments(p)
    p.add_argument("--init-from", default=None, help="start from this model directory's prior weights (fine-tune)")
    p.set_defaults(func=cmd_train_prior)

    p = train.add_parser("predictor", help="train a property predictor on a discrete prior's token prefixes (for --property-guidance and --candidates)")
    _add_latent_data_arguments(
        p, model="model directory with tokenizer and prior; the predictor is made for its prior",
        out="run directory; copy RUN/model/predictor into the model directory to use it",
    )
    _add_own_sample_arguments(p, "the predictor then reads the prior's samples as well as encoded data, which is what resampling (--candidates) chooses among")
    p.add_argument("--init-from", default=None, help="a model directory with predictor/ (or a predictor directory) whose weights a new run starts from; its shape is kept")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=200)
    _add_trainer_arguments(p)
    p.set_defaults(func=cmd_train_predictor)

    p = train.add_parser(
        "judge", help="train a graph network predicting the properties of decoded molecules, which keeps the candidate nearest a request's targets",
    )  # fmt: skip
    _add_latent_data_arguments(
        p, model="model directory with tokenizer and prior; the judge predicts its prior's properties",
        out="run directory; copy RUN/model/judge into the model directory to use it",
    )
    _add_own_sample_arguments(p, "the judge then reads the molecules the model makes, which is what it chooses among")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=5, help="message-passing layers")
    p.add_argument("--walk-steps", type=int, default=12, help="random-walk return probabilities over 1..K steps as node features (rings)")
    p.add_argument("--default-candidates", type=int, default=32, help="candidates per molecule a request with targets then draws by default")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=300)
    _add_trainer_arguments(p)
    p.set_defaults(func=cmd_train_judge)

    p = sub.add_parser(
        "sample", help="sample molecules (or a scene model's scenes) from a model and stream them to a file",
        description="Sample molecules, or scenes from a scene model (--model checkpoints/clevr); the default model is the shipped one, checkpoints/moses.",
    )  # fmt: skip
    p.add_argument("-n", type=int, default=None, help="number of samples (invalid ones included); not with --conditions-file")
    p.add_argument("--out", required=True, help="output .csv, .sdf (properties as SD tags) or .smi; a scene model's: .jsonl (one scene record per line)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
    p.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run's --out: the samples it holds are kept and the rest drawn as the uninterrupted run would (same arguments)",
    )
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--condition", action="append", metavar="NAME=VALUE", help="property target, e.g. QED=0.8 (repeatable)")
    p.add_argument(
        "--conditions-file", default=None, metavar="TABLE.csv",
        help="per-sample targets: a .csv whose columns are property names (any case; blank = no target) and optionally "
        "num_nodes; one sample per row (--per-row K for more); other columns are ignored; bad rows are reported and skipped; "
        "the output gives each sample's row and targets",
    )  # fmt: skip
    p.add_argument("--per-row", type=int, default=1, help="samples per row of --conditions-file")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale for --condition / --conditions-file")
    p.add_argument("--num-nodes", type=int, default=None, help="heavy atoms per molecule, objects per scene (default: as in training)")
    p.add_argument(
        "--temperature", type=float, default=None,
        help="a discrete or masked prior's softmax temperature; a set prior's scale of the starting noise (default: the model's; <1: more valid, less diverse)",
    )
    p.add_argument(
        "--top-p", type=float, default=None,
        help="discrete and masked priors: nucleus sampling, each token drawn among the likeliest codes holding this share of the probability (default: the model's; 1: off)",
    )
    p.add_argument(
        "--repairs", type=int, default=None,
        help="repair passes of the discrete prior: each sample whose argmax decoding breaks a valence or falls apart is redrawn "
        "from its first atom at fault (default: the model's, 2 for the shipped one; 0: none)",
    )
    p.add_argument("--property-guidance", type=float, default=0.0, help=PROPERTY_GUIDANCE_HELP)
    p.add_argument("--candidates", type=int, default=None, help=CANDIDATES_HELP)
    p.add_argument("--selection", choices=SELECTIONS, default=None, help=SELECTION_HELP)
    p.add_argument(
        "--calibration", choices=sorted(CALIBRATED), default="auto",
        help="calibrated resampling toward the data's numbers of rings, aromatic rings and rings of unusual size (needs calibration/ in the model directory: "
        "molgen calibrate); auto (default): on for unconditional sampling when the model has one",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
    p.add_argument("--sampler", default=None, help="set prior: scheduler, euler, heun or dpm (DPM-Solver++ 2M) (default: the model's)")
    p.add_argument(
        "--decoding", choices=["raw", "valence"], default="valence",
        help="valence: the domain's decoding from probabilities, always valid (default; valence-aware for molecules, layout-aware for scenes); raw: argmax, checked",
    )  # fmt: skip
    p.add_argument("--no-properties", dest="properties", action="store_false", help="do not compute properties (faster)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None, help=PRECISION_HELP)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "calibrate",
        help="measure a model's calibration: its samples' numbers of rings, aromatic rings and unusual rings against the data's, for calibrated resampling",
    )  # fmt: skip
    p.add_argument("data", help="training molecules (.smi, .csv or .sdf; e.g. data/moses/train.csv.gz)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--out", default=None, help="where to write it (default: MODEL/calibration, which sampling then uses by default)")
    p.add_argument("--samples", type=int, default=30000, help="uncalibrated samples to measure the model on (default 30,000)")
    p.add_argument("--data-size", type=int, default=100000, help="random data molecules to measure (default 100,000)")
    p.add_argument("--candidates", type=int, default=2, help="graphs drawn per graph returned when calibrated (default 2; sampling costs this many times more)")
    p.add_argument("--smiles-column", default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate", help="MOSES metrics of a file of sampled molecules")
    p.add_argument("input", help=".csv (molgen sample output or a 'smiles' column), .smi or .sdf; empty/invalid rows count as invalid")
    p.add_argument("--smiles-column", default=None)
    p.add_argument("--test", default=None, help="reference set for FCD/SNN/Frag/Scaf/properties (default: MOSES test)")
    p.add_argument("--test-scaffolds", default=None, help="second reference set for the /TestSF metrics")
    p.add_argument("--train", default=None, help="training set for Novelty")
    p.add_argument("--out", default=None, help="also write the metrics as JSON here")
    p.add_argument("--device", default="cpu", help="device for ChemNet and the similarity products")
    p.add_argument("--jobs", type=int, default=2, help="processes for RDKit features")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reconstruct", help="encode molecules to latent tokens and decode them back")
    p.add_argument("input", nargs="?", help=".smi, .csv or .sdf file")
    p.add_argument("--smiles", nargs="+", help="SMILES given on the command line instead of a file")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--out", default=None, help="write a CSV of results here (default: print them)")
    p.add_argument("--smiles-column", default=None)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument(
        "--decoding", choices=["verified", "raw", "valence"], default="verified",
        help="verified (default): the decoder's argmax checked by re-encoding it, and where it does not give the tokens back, the nearest "
        "graph that does; raw: the decoder's argmax alone (the decoder's own exactness); valence: the domain's decoding from probabilities, "
        "as sampling decodes",
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_reconstruct)
    scenes = sub.add_parser("scenes", help="scene graphs: generate data, design scenes to a request, complete partial scenes, retrieve nearest scenes").add_subparsers(dest="scenes_command", required=True)
    p = scenes.add_parser("generate", help="procedural CLEVR-style scenes (3-10 objects, CLEVR's placement rules) as JSON lines")
    p.add_argument("-n", type=int, required=True, help="number of scenes")
    p.add_argument("--seed", type=int, default=0, help="scene k of a seed is the same whatever -n")
    p.add_argument("--start", type=int, default=0, help="first scene index (another range of the same seed)")
    p.add_argument("--out", required=True, help="output .jsonl (one scene JSON object per line)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_scenes_generate)

    def scene_model(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=None, help="scene model directory (default: the shipped scene model, checkpoints/clevr)")
        p.add_argument("--out", required=True, help="output .jsonl (one record per line)")
        p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=1, help="torch threads")

    def designing(p: argparse.ArgumentParser) -> None:
        scene_model(p)
        p.add_argument("-n", type=int, default=1, help="scenes per request (default 1)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--candidates", type=int, default=32, help="candidates drawn per round; the ones satisfying the request are kept")
        p.add_argument("--rounds", type=int, default=4, help="rounds of candidates at most; then the nearest misses fill in, marked satisfied=false")
        p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale of the exact single-attribute counts (above 1 overshoots them)")
        p.add_argument("--repairs", type=int, default=8, help="passes redrawing drawn objects that make an 'at most' / 'exactly' count too high (0: none)")

    p = scenes.add_parser(
        "design", help="scenes satisfying a request: counts and relations, e.g. '2 red cubes; something left of a metal sphere'",
        description="Scenes satisfying a request. Clauses (separated by ';', ',' or 'and'): counts ('2 red cubes' exactly, 'at least 3 "
        "metal objects', 'at most 1 sphere', 'no cylinders', 'a large cube', '6 objects') and relations ('something left of a metal "
        "sphere', 'a red cube behind a cylinder'; left of, right of, behind, in front of). Each record: request, satisfied, unmet, scene.",
    )  # fmt: skip
    p.add_argument("request", help="the request, quoted")
    designing(p)
    p.set_defaults(func=cmd_scenes_design)

    p = scenes.add_parser(
        "complete", help="complete partial scenes: their objects, attributes and relations kept exactly, objects added around them",
        description="Complete each partial scene of a .json (one scene) or .jsonl file (objects with positions, or with the four "
        "relationship lists). Each record's 'given' maps the partial scene's objects to the completed scene's.",
    )  # fmt: skip
    p.add_argument("input", help="partial scene(s): .json or .jsonl")
    p.add_argument("--request", default=None, help="also satisfy this request, e.g. '8 objects; no metal objects'")
    designing(p)
    p.set_defaults(func=cmd_scenes_complete)

    p = scenes.add_parser("nearest", help="the k scenes of a candidate file nearest each query scene by latent similarity")
    p.add_argument("queries", help="query scene(s): .json or .jsonl")
    p.add_argument("--candidates", required=True, help="candidate scenes: .jsonl (or .json)")
    p.add_argument("-k", type=int, default=5, help="neighbours per query (default 5)")
    p.add_argument("--metric", choices=["set", "mean"], default="set", help="set: optimal matching of the per-object tokens (default); mean: mean-pooled tokens")
    scene_model(p)
    p.set_defaults(func=cmd_scenes_nearest)
    _add_design_parser(sub)
    return parser


def _add_domain_arguments(p: argparse.ArgumentParser) -> None:
    """--domain and --form: what a data file holds (a featurized directory says it itself)."""
    p.add_argument("--domain", choices=sorted(FEATURIZERS), default="molecule", help="what the file holds: molecules (default) or scenes (.jsonl)")
    p.add_argument(
        "--form", choices=["sparse", "dense"], default="sparse",
        help="scenes: sparse (default; per axis only the relations not implied through another object) or dense (every related pair an edge)",
    )  # fmt: skip


def _add_latent_data_arguments(p: argparse.ArgumentParser, model: str, out: str) -> None:
    """The data, model and run options of every command that trains on a tokenizer's cached latents."""
    p.add_argument("data", help="featurized dataset directory, or a .smi/.csv/.sdf file (featurized first)")
    p.add_argument("--model", required=True, help=model)
    p.add_argument("--out", required=True, help=out)
    p.add_argument("--latents", default=None, help="latent cache directory (default: RUN/latents; reused if made by the same tokenizer)")
    p.add_argument("--smiles-column", default=None)
    p.add_argument("--limit", type=int, default=None, help="train on a random subset of this many graphs")
    p.add_argument("--property-limit", type=int, default=None, help="compute conditioning properties for this many random graphs only (about 2 ms each)")


def _add_own_sample_arguments(p: argparse.ArgumentParser, why: str) -> None:
    """--own-samples and its options, for the networks that learn from the model's own decoded samples."""
    p.add_argument(
        "--own-samples", type=int, default=0,
        help="also train on this many of the model's own samples, labelled with the properties of the molecules they decode to "
        f"(two in three conditioned on a training molecule's --own-sample-targets; cached in RUN/own_samples): {why}",
    )  # fmt: skip
    p.add_argument("--own-sample-targets", default="QED,SA,logP,MW", help="properties the conditioned own samples target (comma-separated)")
    p.add_argument("--own-sample-guidance", type=float, default=2.0, help="classifier-free guidance scale of the conditioned own samples")
    p.add_argument("--device", default="auto", help="where to draw the own samples")


CANDIDATES_HELP = (
    "a discrete prior: draw K graphs per molecule and keep one, chosen by the model's own networks (with targets: the judge's "
    "error to them, reading each decoded candidate, or without a judge/ the property predictor's) and its calibration (see "
    "--calibration); default: the model's, 1: none"
)
SELECTION_HELP = (
    "how one of the --candidates is kept: best (the one the model's networks rate highest, e.g. the judge puts nearest the "
    "targets) or draw (in proportion to exp(score): more diverse); default: the judge's (or predictor's) with targets, else draw"
)


def _add_trainer_arguments(p: argparse.ArgumentParser) -> None:
    """Options every training command shares: length, checkpoints, and Lightning's Trainer (scaling)."""
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument(
        "--precision", dest="train_precision", choices=TRAIN_PRECISIONS, default="32-true",
        help="Lightning precision: bf16-mixed runs the networks under bfloat16 autocast (weights, optimiser and EMA stay float32); "
        "about 1.5-2x faster on CPUs with AMX (Intel Sapphire Rapids and later) and on recent GPUs",
    )
    p.add_argument("--max-time", default=None, help="stop after DD:HH:MM:SS of training in all (a resumed run counts its earlier sittings); resume later")
    p.add_argument("--val-every", type=int, default=2000, help="steps between validations")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0, help="minutes of training between checkpoints (a killed run resumes from the last)")
    p.add_argument("--checkpoint-steps", type=int, default=None, help="steps between checkpoints, instead of --checkpoint-minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, ...")
    p.add_argument("--devices", default="auto", help="Lightning devices: auto, a count, or a list")
    p.add_argument("--num-nodes", type=int, default=1, help="machines, for multi-node DDP")
    p.add_argument("--strategy", default="auto", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh even if a checkpoint exists")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def _trainer_settings(args: argparse.Namespace) -> dict:
    return {
        "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": args.warmup_steps, "max_steps": args.max_steps,
        "max_time": args.max_time, "val_every": args.val_every, "checkpoint_minutes": args.checkpoint_minutes,
        "checkpoint_steps": args.checkpoint_steps,
        "seed": args.seed, "accelerator": args.accelerator, "devices": _devices(args.devices), "num_nodes": args.num_nodes,
        "strategy": args.strategy, "threads": args.threads, "progress": args.progress, "precision": args.train_precision,
    }  # fmt: skip


def quiet_threads() -> None:
    """Let idle OpenMP threads sleep instead of spinning (unless the environment says otherwise). On a busy machine a
    spinning thread pool burns the CPU its own work needs: 200 molecules took 12 s with the default policy and 9 s
    with this one while another job ran (BENCHMARKS.md). Takes effect only before torch is first imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    quiet_threads()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)  # molgen's own messages; Lightning configures its own logger
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        args.func(args)
    except (CLIError, FileNotFoundError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"molgen {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"molgen {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
