"""Export PRNet to deployment runtimes: the deployment form (`prnet.export.deploy`), per-format exporters
(`prnet.export.formats`) and runners for each runtime (`prnet.export.runners`)."""
