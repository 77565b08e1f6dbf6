"""The test suite as a package, so its fixtures import as `tests.<name>_fixtures` (from pytest and from scripts run
with `python -m` in the repository root) without sys.path edits."""
