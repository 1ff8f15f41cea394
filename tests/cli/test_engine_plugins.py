"""An execution engine added by a plugin (SPEC 3, ``normandy_executors``), with its own
settings section ``confs.<name>`` as the built-in dask engine has ``confs.dask``."""

from __future__ import annotations

import json
from pathlib import Path

ENGINE = """
import json, os
from pathlib import Path

from normandy_core import hookimpl
from normandy_core.executors.serial import SerialExecutor


class Inline(SerialExecutor):
    '''The serial executor under another name, telling the settings it was given.'''

    def start(self):
        super().start()
        Path(os.environ["ENGINE_OPTIONS"]).write_text(json.dumps(dict(self.setup.options)))


def noop(pipe):
    pipe.vars["done"] = True


@hookimpl
def normandy_executors():
    return {"inline": Inline}


@hookimpl
def normandy_processes():
    return {"noop": noop}
"""


def conf(section: str) -> str:
    return f"""
        confs:
          plugins: [engine]
          executor: inline
          {section}
          envs: {{dev: }}
        flows:
          f:
            tags: [default]
            steps: {{s: [noop]}}
    """


def test_a_plugins_engine_gets_its_own_section_of_settings(normandy, make_project, tmp_path):
    root = make_project(conf("inline: {region: eu, slots: 3}"), {"engine.py": ENGINE})
    out = tmp_path / "options.json"
    result = normandy("run", cwd=root, env={"ENGINE_OPTIONS": str(out)})
    assert result.returncode == 0, result.output
    assert json.loads(out.read_text()) == {"region": "eu", "slots": 3}
    assert normandy("validate", cwd=root).returncode == 0


def test_a_section_that_names_no_executor_is_an_unknown_key(normandy, make_project):
    root = make_project(conf("inlin: {region: eu}"), {"engine.py": ENGINE})
    for command in ("validate", "list", "run"):
        result = normandy(command, cwd=root)
        assert result.returncode == 2, result.output
        assert (
            "pipeline/pipeline_conf.yml:4:3: confs.inlin: unknown key 'inlin'; did you mean "
            "'inline'? (a section of its own is allowed for an executor added by a plugin; "
            "the executors are: dask, inline, local, serial)"
        ) in result.stderr
        assert "Traceback" not in result.output


def test_a_misspelt_key_with_a_plain_value_is_still_the_schemas(normandy, make_project):
    root = make_project(conf("wrokers: 2"), {"engine.py": ENGINE})
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert "confs.wrokers: unknown key 'wrokers'; did you mean 'workers'?" in result.stderr


def test_the_built_in_dask_section_stays_checked(normandy, make_project):
    root: Path = make_project(conf("dask: {address: 42}"), {"engine.py": ENGINE})
    result = normandy("validate", cwd=root)
    assert result.returncode == 2
    assert "confs.dask.address: must be a string" in result.stderr


KIT_ENGINE = """
import json, os, time
from concurrent.futures import Future

from normandy_core import hookimpl
from normandy_core.executors import Executor
from normandy_core.executors.kit import ChildPool, RecordRelay, dict_to_record


class Relayed(Executor):
    '''A third engine from the public kit: a pool of children whose records travel as JSON
    (as they would through a message queue) before reaching the run's log queue.'''

    def start(self):
        queue = self.setup.log_queue
        self.relay = RecordRelay(
            lambda records: [queue.put(dict_to_record(json.loads(json.dumps(r)))) for r in records]
        )
        self.pool = ChildPool(self.workers, self.relay.queue, self.setup.sys_path, mark_ends=True)

    def submit(self, call, timeout=None):
        sent = self.relay.expect(call)
        inner = self.pool.submit(call, timeout)
        outer = Future()

        def done(f):
            if f.exception() is None:
                sent.wait(10)  # the task's lines are all sent before its end is told
                outer.set_result(f.result())
            else:
                self.relay.settle()
                outer.set_exception(f.exception())
            self.relay.forget(call)

        inner.add_done_callback(done)
        return outer

    def shutdown(self, *, cancel=False):
        self.pool.close(cancel=cancel)
        self.relay.close()


def talk(log, pipe):
    log.info("hello from %s", os.getpid())
    pipe.vars["said"] = "hello"


def crash():
    os._exit(7)


def slow():
    time.sleep(30)


@hookimpl
def normandy_executors():
    return {"relayed": Relayed}


@hookimpl
def normandy_processes():
    return {"talk": talk, "crash": crash, "slow": slow}
"""


def test_a_third_engine_from_the_public_kit(normandy, make_project):
    conf = """
        confs:
          plugins: [engine]
          executor: relayed
          workers: 2
          envs: {dev: }
        flows:
          f:
            tags: [default]
            steps:
              s:
                talk:
                crash: {error_tolerance: true}
                slow: {timeout: 1, error_tolerance: true}
    """
    root = make_project(conf, {"engine.py": KIT_ENGINE})
    result = normandy("run", "--json", "--no-progress", cwd=root)
    assert result.returncode == 0, result.output
    tasks = {t["task"]: t for t in json.loads(result.stdout)["tasks"]}
    assert tasks["talk"]["status"] == "succeeded"
    assert tasks["crash"]["status"] == "crashed"
    assert "exited with code 7" in tasks["crash"]["error"]["message"]
    assert tasks["slow"]["status"] == "timed out"
    log = next((root / "logs").iterdir()) / "process-f.s.talk.log"
    assert f"hello from {tasks['talk']['pid']}" in log.read_text()
    assert "attempt 1 started on worker" in log.read_text()  # the start notice travelled too
