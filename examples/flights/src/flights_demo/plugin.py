"""Registers the demo's processes (listed in confs.plugins)."""

from normandy_core import hookimpl

NAMES = ["extract_table", "join_flights", "delays_by_carrier", "delays_by_month",
         "delays_by_weather", "delays_by_route", "write_report", "write_database"]


@hookimpl
def normandy_processes() -> dict[str, str]:
    return {f"flights.{name}": f"flights_demo.processes:{name}" for name in NAMES}
