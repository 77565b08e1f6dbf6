"""The `prnet` command line: thin Typer commands that call plain, importable functions.

Each command lives in `prnet/cli/commands/<area>.py` and imports nothing heavy at module level, so
`prnet --help` stays fast. Commands are registered from the tables below: a group (a Typer app with
sub-commands, e.g. `prnet export onnx`) or a single command (e.g. `prnet train`).
"""

from __future__ import annotations

import importlib

import typer

from prnet import __version__

app = typer.Typer(
    name="prnet",
    help="Train PRNet, compress it, export it and benchmark it: 3D face reconstruction + dense alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build and inspect training data (position maps).", no_args_is_help=True)
app.add_typer(data_app, name="data")

# (command name, "module:function") registered under `prnet data ...`
DATA_COMMANDS: list[tuple[str, str]] = [
    ("uv", "prnet.cli.commands.data_uv:uv_command"),
    ("300wlp", "prnet.cli.commands.data_real:w300lp_command"),
    ("folder", "prnet.cli.commands.data_real:folder_command"),
    ("bfm-layout", "prnet.cli.commands.data_real:bfm_layout_command"),
    ("synth", "prnet.cli.commands.data_synth:synth_command"),
    ("show", "prnet.cli.commands.data_synth:show_command"),
    ("video", "prnet.cli.commands.data_synth:video_command"),
]
# (command name, "module:function") registered at the top level
COMMANDS: list[tuple[str, str]] = [
    ("bench", "prnet.cli.commands.bench:bench_command"),
    ("train", "prnet.cli.commands.train:train_command"),
    ("compress", "prnet.cli.commands.compress:compress_command"),
    ("predict", "prnet.cli.commands.predict:predict_command"),
    ("eval", "prnet.cli.commands.eval:eval_command"),
    ("quickstart", "prnet.cli.commands.quickstart:quickstart_command"),
]
# (group name, "module:typer_app") registered as sub-command groups
GROUPS: list[tuple[str, str]] = [
    ("export", "prnet.cli.commands.export:export_app"),
]


def _resolve(target: str):
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"prnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """prnet: PRNet training, compression, export and benchmarking."""


for _name, _target in DATA_COMMANDS:
    data_app.command(_name)(_resolve(_target))
for _name, _target in COMMANDS:
    app.command(_name)(_resolve(_target))
for _name, _target in GROUPS:
    app.add_typer(_resolve(_target), name=_name)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
