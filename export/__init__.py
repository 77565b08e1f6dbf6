"""Export PRNet to deployment runtimes: the deployment form (`export.deploy`), per-format exporters
(`export.formats`) and runners for each runtime (`export.runners`)."""
