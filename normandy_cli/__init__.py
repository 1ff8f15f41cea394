"""Normandy's command line: one module per command, each parsing, calling the core and
rendering. Entry point: :func:`normandy_cli.app.main`."""
