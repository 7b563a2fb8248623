"""The package's structure: no import cycles, user code named by resolvable module paths, serving
without TFX, and a pipeline definition that reads nothing."""
import ast
import importlib
import os
import subprocess
import sys
from typing import Dict, List, Set

from conftest import REPO_ROOT
from pipeline import user_code

PACKAGES = ("components", "pipeline", "preprocessing", "serving", "trainer")


def module_imports() -> Dict[str, Set[str]]:
    """{module: the package modules it imports}, from the source (module level and inside
    functions alike), for every module of the package."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            name = f"{package}.{path.stem}" if path.stem != "__init__" else package
            modules[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    graph = {}
    for name, tree in modules.items():
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pipeline import runs` imports pipeline.runs; `from x.y import z`, x.y.
                candidates = [f"{node.module}.{alias.name}" for alias in node.names]
                candidates.append(node.module)
            else:
                continue
            imported |= {candidate for candidate in candidates
                         if candidate in modules and candidate != name
                         and candidate not in PACKAGES}
        graph[name] = imported
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle of the directed graph as a path [a, b, ..., a], or []."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_module_imports_itself_through_others():
    graph = module_imports()
    assert len(graph) > 40  # the walk found the package
    assert find_cycle(graph) == []


def test_packages_are_layered_without_cycles():
    packages: Dict[str, Set[str]] = {package: set() for package in PACKAGES}
    for module, imported in module_imports().items():
        packages[module.split(".")[0]] |= {other.split(".")[0] for other in imported}
    for package, imported in packages.items():
        imported.discard(package)
    assert find_cycle(packages) == [], packages
    # The layers, lowest first: serving and preprocessing import no other package.
    assert packages["serving"] == set() and packages["preprocessing"] == set()


def test_serving_depends_on_neither_tfx_nor_components():
    for path in (REPO_ROOT / "serving").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                assert name.split(".")[0] not in ("tfx", "components", "pipeline"), \
                    f"{path.name} imports {name}"


def test_importing_the_local_server_does_not_import_tfx():
    probe = ("import serving.local_server, sys; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('tfx', 'components', 'pipeline', 'tensorflow_transform')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_user_code_paths_name_functions_of_the_package():
    for path in (user_code.PREPROCESSING_FN, user_code.RUN_FN):
        module, _, function = path.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), path
    # Named in one place: no other module has them as a string.
    for package in PACKAGES:
        for source in (REPO_ROOT / package).glob("*.py"):
            if source.name != "user_code.py":
                strings = {node.value for node in ast.walk(ast.parse(source.read_text()))
                           if isinstance(node, ast.Constant) and isinstance(node.value, str)}
                assert not {user_code.RUN_FN, user_code.PREPROCESSING_FN} & strings, source


def test_create_pipeline_touches_no_file_or_network(tmp_path):
    """create_pipeline under an audit hook that fails on any socket, any file opened (other than
    Python's own modules) and any directory listing; gs:// paths that do not exist."""
    from pipeline.config import PipelineConfig
    from pipeline.pipeline import create_pipeline
    config = PipelineConfig.from_settings(
        train_data="gs://nowhere/data/span-{SPAN}/train.csv",
        eval_data="gs://nowhere/data/span-{SPAN}/dev.csv", checkpoint="gs://nowhere/ckpt",
        schema_path="gs://nowhere/schema.pbtxt", output_dir="gs://nowhere/runs",
        label_values=["negative", "positive"])
    create_pipeline(config)  # imports whatever it imports lazily, before the hook
    touched: List[str] = []
    recording: List[bool] = []  # the hook stays installed (it cannot be removed): off when empty

    def audit(event, args):
        if not recording:
            return
        if event.startswith("socket.") or event in ("os.listdir", "os.scandir", "glob.glob"):
            touched.append(f"{event} {args!r}")
        elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            if not path.endswith((".py", ".pyc", ".so")) and "site-packages" not in path:
                touched.append(f"open {path}")

    sys.addaudithook(audit)
    recording.append(True)
    try:
        pipeline = create_pipeline(config)
    finally:
        recording.clear()
    assert touched == []
    # Span data: with the warm-start resolver, the text checks and the drift check.
    assert len(pipeline.components) == 19
