"""Registers the sample processes with Normandy (listed in confs.plugins)."""

from normandy_core import hookimpl


@hookimpl
def normandy_processes():
    names = ["read_file", "process_data", "add_data", "prints", "read_file_with_err",
             "process_data_with_err"]
    return {name: f"original_example.processes:{name}" for name in names}
