"""The `fslib` command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from fslib.languages import MINI_LANGS

MINI_DATA = Path("outputs/data/mini")
TINY_MODEL = Path("outputs/models/tiny-xlmr")


def prepare_offline(output_dir: Path = Path("outputs")) -> tuple[Path, Path]:
    """The offline benchmark and the tiny model under `output_dir`, made on first use."""
    from fslib.mini import MANIFEST, generate
    from fslib.models import build_tiny_model, mini_corpus

    data_dir, model_dir = output_dir / "data" / "mini", output_dir / "models" / "tiny-xlmr"
    if not (data_dir / MANIFEST).exists():
        generate(data_dir, seed=0)
    if not (model_dir / "config.json").exists():
        build_tiny_model(model_dir, mini_corpus(data_dir))
    return data_dir, model_dir


def demo(args: argparse.Namespace) -> int:
    from fslib.config import RunConfig
    from fslib.runner import run_dir, run_experiment

    data_dir, model_dir = prepare_offline(Path(args.output_dir))
    config = RunConfig(task="ner", method="gradient-co-train", k=5, seed=1, model=str(model_dir),
                       data_dir=str(data_dir), languages=list(MINI_LANGS), output_dir=args.output_dir,
                       epochs=3, learning_rate=1e-3)
    rows = run_experiment(config)
    print(rows[rows.split == "test"].pivot_table(index="lang", values="value").round(2).to_string())
    print(f"results: {run_dir(config)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fslib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="run the main job on the built-in offline benchmark")
    run_demo.add_argument("--output-dir", default="outputs")
    run_demo.set_defaults(handler=demo)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
