"""Loading and validating ``pipeline/pipeline_conf.yml`` (SPEC 6).

Every problem is collected with its position and reported at once, as a
:class:`~normandy_core.errors.ConfigError`.
"""

from __future__ import annotations

from normandy_core.config._checks import (
    check_engine_sections,
    check_executor,
    check_processes,
    check_store,
    checkable,
)
from normandy_core.config._datasets import COMMON_KEYS, DatasetSpec
from normandy_core.config._envs import env_settings, load_credentials, select_env
from normandy_core.config._flows import (
    MAX_MAP,
    FlowConfig,
    IterParam,
    MapSpec,
    ProcessEntry,
    StepConfig,
)
from normandy_core.config._model import (
    CONF_FILE,
    EnvConfig,
    ProjectConfig,
    read_config,
    save_checked,
)
from normandy_core.config._nodes import Location
from normandy_core.config._schema import LOG_LEVELS, SCHEDULES
from normandy_core.config._yaml import parse_yaml

__all__ = [
    "COMMON_KEYS",
    "CONF_FILE",
    "LOG_LEVELS",
    "DatasetSpec",
    "MAX_MAP",
    "SCHEDULES",
    "EnvConfig",
    "FlowConfig",
    "IterParam",
    "Location",
    "MapSpec",
    "ProcessEntry",
    "ProjectConfig",
    "StepConfig",
    "check_engine_sections",
    "check_executor",
    "check_processes",
    "checkable",
    "check_store",
    "env_settings",
    "load_credentials",
    "parse_yaml",
    "read_config",
    "save_checked",
    "select_env",
]
