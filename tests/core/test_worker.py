"""``run_task`` called in this process (as the serial executor does), with a plain
``queue.Queue`` as the log queue: results, failures, masking and captured output."""

from __future__ import annotations

import logging
import os
import queue
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from normandy_core._interrupt import RunInterrupted
from normandy_core.logs import lines_records
from normandy_core.pipe import variables_storage
from normandy_core.store import FlowStore
from normandy_core.worker import Masker, TaskCall, TaskResult, run_task, secret_values

PROCS = """
import json
import sys

RECORD = {}


def succeed(pipe, log, params):
    from normandy_core.pipe import variables_storage
    RECORD.update(
        env=pipe.env, confs=dict(pipe.confs), credentials=dict(pipe.credentials),
        path=pipe.path, run_id=pipe.run_id, flow=pipe.flow, step=pipe.step,
        process=pipe.process, task=pipe.task, tags=pipe.tags, params=params,
        same_params=params is pipe.params, storage_is_vars=variables_storage() is pipe.vars,
        logger=log,
    )
    pipe.vars["written"] = {"ok": True}
    log.info("hello %s", "world")
    return "ignored"


def only_params(params):
    RECORD["only_params"] = dict(params)
    params["added_by_the_process"] = True


def fail(pipe, log):
    pipe.vars["partial"] = 1
    helper_that_raises(pipe.params.get("what", "bad thing"))


def helper_that_raises(what):
    raise ValueError(what)


def leak(pipe, log):
    secret = pipe.credentials["db"]["password"]
    log.info("password is %s", secret)
    log.warning(f"token {pipe.credentials['token']}")
    print("printed", secret)
    print("to stderr", pipe.credentials["token"], file=sys.stderr)
    try:
        raise KeyError(f"refused {secret}")
    except KeyError:
        log.exception("login failed")
    raise RuntimeError(f"cannot connect using {secret}")


def printer(pipe, log):
    print("first line")
    print("two", "words")
    sys.stdout.write("partial ")
    sys.stdout.write("line\\nand a tail without newline")
    print("on stderr", file=sys.stderr)
    log.debug("a debug record")


def exits(pipe):
    sys.exit(3)


def interrupted(pipe):
    raise KeyboardInterrupt("the process's own")


def signalled(pipe):
    from normandy_core._interrupt import RunInterrupted

    raise RunInterrupted  # as the orchestrator's SIGINT handler does, under serial


def needs_more(pipe, table):
    pass


def unsettling(pipe):
    import os
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir("/")
"""


@pytest.fixture
def procs(tmp_path: Path, write_module, module_name, clean_imports) -> str:
    """The name of a fresh, importable module holding the processes above."""
    name = module_name("procs")
    write_module(tmp_path / "code", name, PROCS)
    sys.path.insert(0, str(tmp_path / "code"))
    return name


@pytest.fixture
def make_call(tmp_path: Path, procs: str) -> Callable[..., TaskCall]:
    store = FlowStore(tmp_path / "run", "f")

    def make(function: str, **changes: Any) -> TaskCall:
        key = f"f.s.{function}"
        fields: dict[str, Any] = dict(
            run_id="20260101-000000-abcd",
            flow="f",
            step="s",
            task=function,
            key=key,
            process=function,
            target=f"{procs}:{function}",
            params={"limit": 5},
            tags=("default",),
            env="dev",
            confs={"read": "raw_dev"},
            credentials={},
            root=str(tmp_path),
            vars_dir=str(store.vars_dir),
            staging_dir=str(store.staging(key)),
        )
        fields.update(changes)
        return TaskCall(**fields)

    make.store = store  # type: ignore[attr-defined]
    return make


def records(log_queue: queue.Queue) -> list[logging.LogRecord]:
    """What the task logged: the records after the worker's start notice (always first),
    a record per line sent."""
    out = []
    while True:
        try:
            out.append(log_queue.get_nowait())
        except queue.Empty:
            break
    assert out and hasattr(out[0], "started"), "the start notice comes first"
    return [record for item in out[1:] for record in lines_records(item)]


def module(procs: str):
    return sys.modules[procs]


# -- success ------------------------------------------------------------------------------


def test_a_succeeding_process(make_call, procs, tmp_path: Path):
    log_queue: queue.Queue = queue.Queue()
    call = make_call("succeed", credentials={"user": "bob"})
    stdout, stderr = sys.stdout, sys.stderr
    result = run_task(call, log_queue)
    assert isinstance(result, TaskResult)
    assert result.ok is True
    assert result.key == "f.s.succeed"
    assert result.pid == os.getpid()
    assert result.started <= result.ended
    assert (result.error_type, result.error_message, result.traceback) == ("", "", "")
    assert (sys.stdout, sys.stderr) == (stdout, stderr)  # restored

    seen = module(procs).RECORD
    assert seen["env"] == "dev"
    assert seen["confs"] == {"read": "raw_dev"}
    assert seen["credentials"] == {"user": "bob"}
    assert seen["path"] == tmp_path and isinstance(seen["path"], Path)
    assert (seen["run_id"], seen["flow"], seen["step"], seen["process"], seen["task"]) == (
        "20260101-000000-abcd",
        "f",
        "s",
        "succeed",
        "succeed",
    )
    assert seen["tags"] == ("default",)
    assert seen["params"] == {"limit": 5}
    assert seen["same_params"] is True
    assert seen["storage_is_vars"] is True
    assert isinstance(seen["logger"], logging.Logger)

    # the write is staged, not committed: the orchestrator commits it
    assert make_call.store.staged_names("f.s.succeed") == ["written"]
    assert make_call.store.names() == []

    [record] = records(log_queue)
    assert record.getMessage() == "hello world"
    assert record.levelno == logging.INFO
    assert (record.flow, record.step, record.task, record.key) == (
        "f",
        "s",
        "succeed",
        "f.s.succeed",
    )


def test_the_start_notice_says_which_worker_runs_which_attempt(make_call):
    log_queue: queue.Queue = queue.Queue()
    before = time.time()
    result = run_task(make_call("succeed", attempt=3), log_queue)
    notice = log_queue.get_nowait()
    key, attempt, pid, when = notice.started
    assert (key, attempt, pid) == ("f.s.succeed", 3, os.getpid())
    # the work starts once the process's module is imported: that time is apart
    assert before <= when <= result.started
    assert result.started - when == pytest.approx(result.import_duration, abs=0.05)
    assert (notice.flow, notice.key, notice.event) == ("f", "f.s.succeed", True)
    assert notice.getMessage() == f"attempt 3 started on worker {os.getpid()}"


def test_params_only_process_and_the_params_are_a_copy(make_call, procs):
    params = {"limit": 5}
    call = make_call("only_params", params=params)
    assert run_task(call, queue.Queue()).ok
    assert module(procs).RECORD["only_params"] == {"limit": 5}
    assert call.params == {"limit": 5}  # the process changed its own copy only
    assert run_task(call, queue.Queue()).ok
    assert module(procs).RECORD["only_params"] == {"limit": 5}


def test_variables_storage_only_inside_a_process(make_call):
    with pytest.raises(RuntimeError, match="only available inside a process"):
        variables_storage()
    assert run_task(make_call("succeed"), queue.Queue()).ok
    with pytest.raises(RuntimeError):
        variables_storage()  # reset after the task


def test_without_a_queue_records_go_nowhere(make_call):
    assert run_task(make_call("succeed")).ok


# -- failure ------------------------------------------------------------------------------


def test_a_failing_process(make_call, procs):
    log_queue: queue.Queue = queue.Queue()
    stdout, stderr = sys.stdout, sys.stderr
    result = run_task(make_call("fail", params={"what": "the input is wrong"}), log_queue)
    assert result.ok is False
    assert result.pid == os.getpid()
    assert result.error_type == "ValueError"
    assert result.error_message == "the input is wrong"
    tb = result.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert tb.rstrip().endswith("ValueError: the input is wrong")
    assert f"{procs}.py" in tb
    assert "in fail" in tb and "in helper_that_raises" in tb
    assert "raise ValueError(what)" in tb
    assert "normandy_core" not in tb  # the worker's own frame is hidden
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    # its staged write is still there: discarding is the orchestrator's job
    assert make_call.store.staged_names("f.s.fail") == ["partial"]


def test_sys_exit_is_a_failure_not_an_exit(make_call):
    result = run_task(make_call("exits"), queue.Queue())
    assert result.ok is False
    assert result.error_type == "SystemExit"
    assert result.error_message == "3"


def test_a_process_s_own_keyboard_interrupt_is_its_failure(make_call):
    result = run_task(make_call("interrupted"), queue.Queue())
    assert result.ok is False
    assert (result.error_type, result.error_message) == ("KeyboardInterrupt", "the process's own")
    assert 'raise KeyboardInterrupt("the process\'s own")' in result.traceback


def test_a_real_interrupt_propagates(make_call):
    stdout, cwd = sys.stdout, os.getcwd()
    with pytest.raises(RunInterrupted):
        run_task(make_call("signalled"), queue.Queue())
    assert sys.stdout is stdout
    assert os.getcwd() == cwd
    with pytest.raises(RuntimeError):
        variables_storage()


def test_a_task_s_chdir_and_signal_handlers_stay_in_the_task(make_call):
    import signal

    before = (os.getcwd(), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    assert run_task(make_call("unsettling"), queue.Queue()).ok
    after = (os.getcwd(), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    assert after == before


def test_process_that_cannot_be_imported(make_call, procs):
    result = run_task(make_call("nope", target=f"{procs}:does_not_exist"), queue.Queue())
    assert result.ok is False
    assert result.error_type
    assert "does_not_exist" in result.error_message or "does_not_exist" in result.traceback


def test_process_with_an_unservable_signature(make_call):
    result = run_task(make_call("needs_more"), queue.Queue())
    assert result.ok is False
    assert "table" in result.error_message


# -- masking ------------------------------------------------------------------------------

CREDENTIALS = {
    "db": {"user": "al", "password": "hunter2-topsecret", "port": 5432},
    "token": "tok-987654321",
    "enabled": True,
    "nothing": None,
}
SECRETS = ("hunter2-topsecret", "tok-987654321")


def test_secret_values():
    values = secret_values(CREDENTIALS)
    assert set(values) == {"al", "hunter2-topsecret", "5432", "tok-987654321"}
    assert secret_values({"list": ["a1b2", {"deep": ("x" * 5,)}]}) == ("a1b2", "xxxxx")
    assert secret_values({}) == ()


def test_masker():
    masker = Masker(["abc", "abcdef", "xy", ""])
    assert masker("key abcdef and abc") == "key *** and ***"  # longest first
    assert masker("xy stays") == "xy stays"  # too short to mask safely
    assert masker("nothing here") == "nothing here"
    assert Masker([])("abc") == "abc"


def test_credentials_are_masked_in_records_and_tracebacks(make_call):
    log_queue: queue.Queue = queue.Queue()
    call = make_call("leak", credentials=CREDENTIALS, masks=secret_values(CREDENTIALS))
    result = run_task(call, log_queue)
    assert result.ok is False
    assert result.error_type == "RuntimeError"
    assert result.error_message == "cannot connect using ***"
    assert "cannot connect using ***" in result.traceback
    texts = []
    for record in records(log_queue):
        text = record.getMessage() + (record.exc_text or "")
        texts.append(text)
    joined = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in joined
        assert secret not in result.traceback and secret not in result.error_message
    assert "password is ***" in joined
    assert "token ***" in joined
    assert "printed ***" in joined
    assert "to stderr ***" in joined
    assert "refused ***" in joined  # the traceback of log.exception
    assert "KeyError" in joined


# -- captured output ----------------------------------------------------------------------


def test_print_becomes_log_records(make_call, capsys):
    log_queue: queue.Queue = queue.Queue()
    assert run_task(make_call("printer"), log_queue).ok
    got = [(r.levelno, r.getMessage()) for r in records(log_queue)]
    assert (logging.INFO, "first line") in got
    assert (logging.INFO, "two words") in got
    assert (logging.INFO, "partial line") in got
    assert (logging.INFO, "and a tail without newline") in got  # flushed at the end
    assert (logging.WARNING, "on stderr") in got
    assert all("debug" not in message for _, message in got)  # below the task's level
    captured = capsys.readouterr()
    assert "first line" not in captured.out and "on stderr" not in captured.err


def test_log_level_of_the_task(make_call):
    log_queue: queue.Queue = queue.Queue()
    assert run_task(make_call("printer", log_level=logging.DEBUG), log_queue).ok
    assert "a debug record" in [r.getMessage() for r in records(log_queue)]
    log_queue = queue.Queue()
    assert run_task(make_call("printer", log_level=logging.WARNING), log_queue).ok
    assert [r.getMessage() for r in records(log_queue)] == ["on stderr"]


def test_records_are_tagged_with_the_task(make_call):
    log_queue: queue.Queue = queue.Queue()
    call = make_call(
        "printer", flow="nightly", step="load", task="printer[eu]", key="nightly.load.printer[eu]"
    )
    assert run_task(call, log_queue).ok
    got = records(log_queue)
    assert got
    for record in got:
        assert (record.flow, record.step, record.task, record.key) == (
            "nightly",
            "load",
            "printer[eu]",
            "nightly.load.printer[eu]",
        )
