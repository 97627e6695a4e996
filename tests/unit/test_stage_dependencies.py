"""dvc.yaml, deploy/dvc.yaml and bentofile.yaml list exactly the project files and params their
code reads.

Dependencies written by hand go stale: a stage that imports a module its `deps` leave out is
skipped by `dvc repro` when that module changes, and the Bento ships without a module the service
imports. These tests follow each stage module's imports (ast, project packages only) and its
reads of params.yaml sections (attribute chains through `model.params.Params`), and say which
line to add or remove where.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from model.params import Params
from tests.conftest import REPO_ROOT

PACKAGES = frozenset(
    tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
)
# The deterministic stages (lock committed), then the machine-local ones (lock kept out of git).
PIPELINE_FILES = ("dvc.yaml", "deploy/dvc.yaml")
PIPELINES = {name: yaml.safe_load((REPO_ROOT / name).read_text()) for name in PIPELINE_FILES}
BENTOFILE = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
PARAMS_MODULE = Path("model/params.py")
PYTHON_M = re.compile(r"^python3? -m ([\w.]+)")
LOADS_PARAMS = re.compile(r"(^|\.)(Params\.load|Params\.model_validate|load_checked)$")


def module_file(name: str) -> Path | None:
    """The project file that `import name` runs, relative to the repository, if it is ours."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (REPO_ROOT / candidate).is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth in the file, with its parent packages."""
    names: set[str] = set()
    package = ".".join(path.parent.parts)
    for node in ast.walk(ast.parse((REPO_ROOT / path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import mod`
    parents = {
        ".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 1)
    }
    return names | parents


def run_by_path(path: Path) -> set[Path]:
    """Project files `path` names as a string (e.g. a locustfile it hands to a subprocess)."""
    mentioned = set()
    for node in ast.walk(ast.parse((REPO_ROOT / path).read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            candidate = Path(node.value)
            if candidate.suffix == ".py" and candidate.parts[0] in PACKAGES:
                mentioned.add(candidate)
    return mentioned


def closure(roots: set[Path]) -> dict[Path, Path]:
    """Every project file the roots import transitively, mapped to a file that imports it."""
    found = {root: root for root in roots}
    queue = sorted(roots)
    while queue:
        current = queue.pop()
        named = {module_file(name) for name in imported_modules(current)} | run_by_path(current)
        for path in sorted(path for path in named if path is not None and path not in found):
            found[path] = current
            queue.append(path)
    return found


def is_docstring_only(path: Path) -> bool:
    """An `__init__.py` with nothing to run: a dependency on it would only add noise."""
    body = ast.parse((REPO_ROOT / path).read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def section_fields(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Field name -> its params model when the field is a section itself, else None."""
    fields: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        candidates = [info.annotation, *get_args(info.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        fields[name] = nested[0] if nested else None
    return fields


def attribute_chain(node: ast.Attribute) -> tuple[str, list[str]]:
    """`params.serving.slo` -> ("params", ["serving", "slo"]); the base as source text."""
    names: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        names.append(current.attr)
        current = current.value
    return ast.unparse(current), names[::-1]


def params_reads(source: str) -> set[str]:
    """Dotted params.yaml keys `source` reads, e.g. {"serving", "evaluate.bootstrap.seed"}.

    A chain counts when it reaches a `Params` section through something that names params
    (`params.x`, `PARAMS.x`, `Params.load().x`, `self.params.x`) or through a name this file
    binds to loaded params (`cfg = Params.load()`); it is followed into the section's typed
    fields as far as they go. Other objects with look-alike fields (the gate's result) do not
    count.
    """
    sections = section_fields(Params)
    tree = ast.parse(source)
    bound = params_names(tree)
    reads = dumped_params_reads(tree, set(sections))
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue  # only the longest chain
        base, names = attribute_chain(node)
        start = next((i for i, name in enumerate(names) if name in sections), None)
        if start is None:
            continue
        prefix = ".".join([base, *names[:start]])
        if "params" in prefix.lower() or prefix.split(".")[0] in bound:
            reads.add(typed_key(names[start:]))
    return reads


def params_names(tree: ast.AST) -> set[str]:
    """Names assigned from `Params.load(...)`, `Params.model_validate(...)` or `load_checked`."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if LOADS_PARAMS.search(ast.unparse(node.value.func)):
            for target in node.targets:
                bound.update(name.id for name in ast.walk(target) if isinstance(name, ast.Name))
    return bound


def typed_key(names: list[str]) -> str:
    """`["evaluate", "bootstrap", "seed", "real"]` -> "evaluate.bootstrap.seed": as far as the
    params models have fields."""
    key, model = [names[0]], section_fields(Params)[names[0]]
    for name in names[1:]:
        fields = section_fields(model) if model is not None else {}
        if name not in fields:
            break
        key.append(name)
        model = fields[name]
    return ".".join(key)


def dumped_params_reads(tree: ast.AST, sections: set[str]) -> set[str]:
    """Sections read from params as plain data: `params["train"]`, `params.get("prepare")`."""
    reads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            base, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr != "get":
                continue
            base, key = node.func.value, node.args[0]
        else:
            continue
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        if key.value in sections and "params" in ast.unparse(base).lower():
            reads.add(key.value)
    return reads


@dataclass(frozen=True)
class Stage:
    file: str  # the pipeline file that defines it, as messages name it
    name: str
    module: str
    deps: frozenset[str]
    params: frozenset[str]

    @classmethod
    def from_pipeline(cls, file: str, name: str, spec: dict[str, Any]) -> Stage | None:
        match = PYTHON_M.match(" ".join(str(spec["cmd"]).split()))
        if match is None:
            return None
        deps = frozenset(str(dep) for dep in spec.get("deps", []))
        params = frozenset(str(key) for key in spec.get("params", []))
        return cls(file, name, match.group(1), deps, params)

    def roots(self) -> set[Path]:
        """The stage module, and the Bento's service when the stage builds the Bento."""
        entry = module_file(self.module)
        where = f"{self.file} stage {self.name!r}"
        assert entry is not None, f"{where}: no project module {self.module}"
        main = entry.parent / "__main__.py"
        roots = {main if entry.name == "__init__.py" and (REPO_ROOT / main).is_file() else entry}
        if "bentofile.yaml" in self.deps:
            roots.add(bento_service_file())
        return roots


def bento_service_file() -> Path:
    module = str(BENTOFILE["service"]).split(":")[0]
    path = module_file(module)
    assert path is not None, f"bentofile.yaml: service {module} is not a project module"
    return path


STAGES = [
    stage
    for file, pipeline in PIPELINES.items()
    for name, spec in pipeline["stages"].items()
    if (stage := Stage.from_pipeline(file, name, spec)) is not None
]


def stage_id(stage: Stage) -> str:
    """The stage as DVC addresses it: `gate` is `deploy/dvc.yaml:gate`."""
    return stage.name if stage.file == "dvc.yaml" else f"{stage.file}:{stage.name}"


def test_every_stage_runs_a_project_module() -> None:
    """Each `python -m` stage names a module this repository has (the checks below need it)."""
    assert STAGES, "dvc.yaml and deploy/dvc.yaml have no `python -m` stage"
    for stage in STAGES:
        assert stage.roots()


def test_every_stage_outside_the_root_runs_from_the_repository_root() -> None:
    """The checks here read deps and params.yaml as paths from the repository root: a stage in
    deploy/dvc.yaml without `wdir: ..` would resolve them under deploy/."""
    wrong = [
        f"{file} stage {name!r}: add `    wdir: ..` (paths are relative to the repository root)"
        for file, pipeline in PIPELINES.items()
        if file != "dvc.yaml"
        for name, spec in pipeline["stages"].items()
        if spec.get("wdir") != ".."
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_deps_list_every_project_file_its_module_imports(stage: Stage) -> None:
    """A change to any file the stage runs re-runs the stage."""
    files = closure(stage.roots())
    missing = sorted(
        path
        for path in files
        if str(path) not in stage.deps
        and not (path.name == "__init__.py" and is_docstring_only(path))
    )
    assert not missing, "\n".join(
        f"{stage.file} stage {stage.name!r}: add `      - {path}` under deps: "
        f"(imported by {files[path]})"
        for path in missing
    )


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_deps_name_no_project_file_it_does_not_run(stage: Stage) -> None:
    """A listed module the stage no longer imports only re-runs it for nothing."""
    files = closure(stage.roots())
    stale = sorted(
        dep
        for dep in stage.deps
        if dep.endswith(".py") and dep.split("/")[0] in PACKAGES and Path(dep) not in files
    )
    assert not stale, "\n".join(
        f"{stage.file} stage {stage.name!r}: remove `      - {dep}` from deps: (nothing the stage "
        "runs imports it)"
        for dep in stale
    )


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_params_cover_every_section_its_code_reads(stage: Stage) -> None:
    """A change to any params.yaml value the stage reads re-runs the stage."""
    files = closure(stage.roots())
    readers = sorted(
        path for path in files if path != PARAMS_MODULE
    )  # its validators check, not use
    reads = {key: path for path in readers for key in params_reads((REPO_ROOT / path).read_text())}
    missing = sorted(
        key
        for key in reads
        if not any(key == listed or key.startswith(f"{listed}.") for listed in stage.params)
    )
    assert not missing, "\n".join(
        f"{stage.file} stage {stage.name!r}: add `      - {key.split('.')[0]}` under params: "
        f"({reads[key]} reads {key})"
        for key in missing
    )


@pytest.mark.parametrize("stage", STAGES, ids=stage_id)
def test_stage_params_name_no_section_its_code_does_not_read(stage: Stage) -> None:
    """A listed section no code of the stage reads only re-runs it for nothing."""
    files = closure(stage.roots())
    readers = sorted(path for path in files if path != PARAMS_MODULE)
    reads = {key for path in readers for key in params_reads((REPO_ROOT / path).read_text())}
    stale = sorted(
        listed
        for listed in stage.params
        if not any(
            f"{key}.".startswith(f"{listed}.") or listed.startswith(f"{key}.") for key in reads
        )
    )
    assert not stale, "\n".join(
        f"{stage.file} stage {stage.name!r}: remove `      - {listed}` from params: (nothing the "
        "stage runs reads it)"
        for listed in stale
    )


def test_params_reads_follow_chains_into_sections() -> None:
    """The params scan sees whole sections, nested fields, and skips look-alike attributes."""
    source = (
        "PARAMS.serving\n"
        "params.evaluate.bootstrap.resamples\n"
        "Params.load().registry.model_name\n"
        "network.train()\n"
        "args.gate.read_text()\n"
        "self.params.monitoring.drift.seed\n"
        'inputs.params["prepare"]\n'
        'params.get("train", {})\n'
        'row["gate"]\n'
        "inputs = Inputs(params=Params.load().model_dump())\n"
        "inputs.gate.latency.get('candidate')\n"
        "cfg, contract = load_checked(a, b)\n"
        "cfg.tune.jobs\n"
    )
    assert params_reads(source) == {
        "serving",
        "evaluate.bootstrap.resamples",
        "registry.model_name",
        "monitoring.drift.seed",
        "prepare",
        "train",
        "tune.jobs",
    }


def test_bento_includes_every_project_file_the_service_imports() -> None:
    """The Bento never ships without a module the service needs."""
    files = closure({bento_service_file()})
    included = {str(entry) for entry in BENTOFILE["include"]}
    missing = sorted(str(path) for path in files if str(path) not in included)
    assert not missing, "\n".join(
        f'bentofile.yaml: add `  - "{path}"` under include: (imported by {files[Path(path)]})'
        for path in missing
    )


def test_bento_includes_no_project_module_the_service_does_not_import() -> None:
    """Nothing the service does not run is shipped (torch-free or not, it is dead weight)."""
    files = {str(path) for path in closure({bento_service_file()})}
    stale = sorted(
        str(entry)
        for entry in BENTOFILE["include"]
        if str(entry).endswith(".py") and str(entry) not in files
    )
    assert not stale, "\n".join(
        f'bentofile.yaml: remove `  - "{entry}"` from include: (the service does not import it)'
        for entry in stale
    )
