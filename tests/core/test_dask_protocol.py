"""What the ``dask`` executor sends between its processes (``executors/dask/_protocol.py``):
log records as plain data Dask can send as events, and the started-marker of an attempt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from normandy_core.executors.dask._protocol import started_marker
from normandy_core.executors.kit import dict_to_record, record_to_dict
from normandy_core.logs import start_notice
from normandy_core.store import FlowStore
from normandy_core.worker import TaskCall


def _record() -> logging.LogRecord:
    record = logging.LogRecord("normandy.task.f.s.t", logging.WARNING, "x.py", 3, "m", None, None)
    record.msg = "password *** refused\nTraceback (most recent call last): ..."  # as masked
    record.flow, record.step, record.task, record.key = "f", "s", "t[a]", "f.s.t[a]"
    return record


def test_a_record_travels_as_plain_data_dask_can_send():
    msgpack = pytest.importorskip("msgpack")
    data = record_to_dict(_record())
    assert msgpack.unpackb(msgpack.packb(data)) == data  # Worker.log_event requires it
    back = dict_to_record(data)
    assert back.getMessage() == _record().msg
    assert (back.levelno, back.levelname, back.name) == (logging.WARNING, "WARNING", _record().name)
    assert (back.flow, back.step, back.task, back.key) == ("f", "s", "t[a]", "f.s.t[a]")
    assert back.created == data["created"]


def test_the_notice_of_an_attempts_start_travels_too():
    notice = start_notice("f", "f.s.t[a]", 2, 4242, 1234.5)
    back = dict_to_record(record_to_dict(notice))
    assert back.started == ("f.s.t[a]", 2, 4242, 1234.5) == notice.started
    assert back.event is True and back.getMessage() == notice.getMessage()
    assert not hasattr(dict_to_record(record_to_dict(_record())), "started")


def test_the_started_marker_lives_in_the_attempts_staging_folder(tmp_path: Path):
    store = FlowStore(tmp_path / "run", "f")

    def call(attempt: int) -> TaskCall:
        return TaskCall(
            run_id="r",
            flow="f",
            step="s",
            task="t",
            key="f.s.t",
            process="p",
            target="m:p",
            params={},
            tags=(),
            env="dev",
            confs={},
            credentials={},
            root=str(tmp_path),
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging("f.s.t")),
            attempt=attempt,
        )

    first, second = started_marker(call(1)), started_marker(call(2))
    assert first != second and first.parent == store.staging("f.s.t")
    first.write([b""])
    assert store.staged_names("f.s.t") == []  # not a variable
    store.discard("f.s.t")  # the next attempt starts clean
    assert not first.exists()
