"""One module per ``normandy`` command."""
