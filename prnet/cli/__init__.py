"""The `prnet` command line (console script `prnet = "prnet.cli:main"`, also `python -m prnet`).

    app.py       the Typer app: registers every command from its tables; `app` and `main`
    commands/    one thin Typer command per area (`prnet train`, `prnet predict`, `prnet export onnx`, ...);
                 heavy imports, including prnet.compress / prnet.export / prnet.bench, stay inside the functions
    quickstart/  `prnet quickstart`: every stage in one run (run.py: config, budgets, orchestration;
                 stages.py: the stages; display.py: what it shows; report.py: OUT/report.{json,md})
"""

from prnet.cli.app import app, main

__all__ = ["app", "main"]
