"""One thin Typer command module per area (`prnet train`, `prnet data synth`, ...), registered by prnet/cli/app.py."""
