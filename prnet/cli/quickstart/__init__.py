"""`prnet quickstart` (prnet/cli/commands/quickstart.py): the whole mission on built-in defaults in one run.

    run.py      QuickstartConfig, the stage list and budgets, run_quickstart (orchestration)
    stages.py   one function per stage: data, train, compress, export, bench
    display.py  what it shows while it runs
    report.py   OUT/report.json and OUT/report.md
"""
