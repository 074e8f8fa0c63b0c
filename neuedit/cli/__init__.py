"""The `neuedit` command: `main` dispatches to one module per subcommand, imported only when it
runs (so `neuedit serve` never imports torch)."""
