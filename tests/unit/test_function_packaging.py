"""What each function's container image installs, measured against what its code imports.

Both images install the library the same way: ``pip install ".[<extra>]"`` (core dependencies plus the function's
extra from pyproject.toml). The checks here walk each handler's imports through the library (every ``imagelift``
module it can reach, lazy imports included) and compare the third-party packages found with the dependency closure
of that install, measured from this venv (file sizes from each distribution's RECORD). They fail when a function
imports something its image lacks, when the classifier image starts pulling in the statistics stack or infra, or when
the report image outgrows its budget. A zip function and all its layers may hold 250 MB unzipped; an image 10 GB.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from infra.localstack.cloudformation import load_template

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers"
MB = 1024 * 1024
ZIP_LIMIT = 250 * MB  # unzipped function + layers
IMAGE_LIMIT = 10 * 1024 * MB  # uncompressed container image
BASE_IMAGE_ALLOWANCE = 800 * MB  # public.ecr.aws/lambda/python:3.12 itself (about 550 MB) with headroom
IMAGE_BUDGET = 1024 * MB  # our own ceiling for the added layers: cold starts grow with the image
FUNCTIONS = {"classify_image": "classify", "influence_report": "report"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_requirements(extra: str) -> list[Requirement]:
    """What ``pip install ".[extra]"`` asks for: the core dependencies plus the extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"][extra]]]


def _closure(requirements: list[Requirement]) -> dict[str, md.Distribution]:
    """Every distribution pip would install for these requirements on Lambda's Python 3.12 (extras followed)."""
    env = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.0"}
    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo = [(req.name, extra) for req in requirements for extra in ("", *req.extras)]
    while todo:
        raw_name, extra = todo.pop()
        name = _normalise(raw_name)
        if (name, extra) in done:
            continue
        done.add((name, extra))
        try:
            dist = seen.get(name) or md.distribution(name)
        except md.PackageNotFoundError:
            pytest.fail(f"{name} is needed by a function image but is not installed in this venv")
        seen[name] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({**env, "extra": extra}):
                todo.extend((req.name, e) for e in ("", *req.extras))
    return seen


def _installed_bytes(dist: md.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total


def _image_closure(extra: str) -> dict[str, int]:
    return {name: _installed_bytes(dist) for name, dist in _closure(_install_requirements(extra)).items()}


def _imports(path: Path) -> set[str]:
    """Every module name imported anywhere in the file (module level and inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _library_file(module: str) -> Path | None:
    base = LIBRARY.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _reachable_imports(handler: Path) -> tuple[set[Path], set[str]]:
    """The library files a handler can reach and the top-level names of everything else they import."""
    files, third_party, todo = set(), set(), [handler]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "imagelift":
                parts = module.split(".")
                for depth in range(1, len(parts) + 1):  # the package __init__ files run too
                    if found := _library_file(".".join(parts[:depth])):
                        todo.append(found)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return files, third_party


@pytest.fixture(scope="module")
def report_closure() -> dict[str, int]:
    return _image_closure("report")


@pytest.fixture(scope="module")
def classify_closure() -> dict[str, int]:
    return _image_closure("classify")


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_everything_a_function_imports_is_in_its_image(function):
    closure = _image_closure(FUNCTIONS[function])
    files, third_party = _reachable_imports(ROOT / "functions" / function / "app.py")
    provided = md.packages_distributions()
    missing = {}
    for module in sorted(third_party):
        dists = {_normalise(d) for d in provided.get(module, [])}
        if not dists & closure.keys():
            missing[module] = sorted(provided.get(module, ["(not installed)"]))
    assert len(files) > 5, f"{function}: the import walk found only {len(files)} files"
    assert not missing, f"{function} imports packages its image does not install: {missing}"


def test_classifier_image_holds_neither_the_statistics_stack_nor_infra(classify_closure):
    _, third_party = _reachable_imports(ROOT / "functions" / "classify_image" / "app.py")
    assert {"pandas", "statsmodels", "scipy"}.isdisjoint(classify_closure), sorted(classify_closure)
    assert not {"infra", "pandas", "statsmodels", "scipy"} & third_party, third_party
    assert {"onnxruntime", "opencv-python-headless"} <= classify_closure.keys()


def test_report_image_holds_no_vision_stack(report_closure):
    _, third_party = _reachable_imports(ROOT / "functions" / "influence_report" / "app.py")
    assert {"onnxruntime", "opencv-python-headless"}.isdisjoint(report_closure), sorted(report_closure)
    assert not {"infra", "cv2", "onnxruntime"} & third_party, third_party
    assert {"pandas", "statsmodels"} <= report_closure.keys()


def test_the_library_never_imports_infra():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((LIBRARY / "imagelift").rglob("*.py"))
        if any(module.split(".")[0] == "infra" for module in _imports(path))
    ]
    assert not offenders, offenders


def test_the_statistics_stack_does_not_fit_a_zip_function(report_closure):
    stats_stack = _closure([Requirement(name) for name in ("numpy", "pandas", "scipy", "statsmodels")])
    size = sum(report_closure[name] for name in stats_stack)
    print(f"numpy+pandas+scipy+statsmodels closure: {size / MB:.0f} MB (zip limit {ZIP_LIMIT / MB:.0f} MB)")
    assert size > ZIP_LIMIT, (
        f"the statistics stack is {size / MB:.0f} MB, under the {ZIP_LIMIT / MB:.0f} MB zip limit: a zip function "
        "with a layer would now fit; reconsider the container image"
    )


def test_the_report_image_fits_its_budget_and_the_lambda_limit(report_closure):
    code = sum(p.stat().st_size for p in (LIBRARY / "imagelift").rglob("*.py"))
    added = sum(report_closure.values()) + code
    largest = sorted(report_closure.items(), key=lambda kv: -kv[1])[:5]
    print("image adds", f"{added / MB:.0f} MB;", ", ".join(f"{n} {s / MB:.0f} MB" for n, s in largest))
    assert added < IMAGE_BUDGET, (
        f"the report image adds {added / MB:.0f} MB, over its {IMAGE_BUDGET / MB:.0f} MB budget"
    )
    assert added + BASE_IMAGE_ALLOWANCE < IMAGE_LIMIT


@pytest.mark.parametrize(
    ("function", "logical_id"),
    [("classify_image", "ClassifyImageFunction"), ("influence_report", "InfluenceReportFunction")],
)
def test_dockerfile_and_template_build_the_image_from_these_files(function, logical_id):
    dockerfile = (ROOT / "functions" / function / "Dockerfile").read_text()
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.12\b", dockerfile, re.M)
    assert f'pip install --no-cache-dir --constraint constraints.txt ".[{FUNCTIONS[function]}]"' in final_stage
    assert "infra" not in final_stage.replace("--from=models", "")
    assert f"COPY functions/{function}/app.py" in final_stage and 'CMD ["app.lambda_handler"]' in final_stage

    template = load_template(ROOT / "template.yaml")
    resource = template["Resources"][logical_id]
    assert resource["Properties"]["PackageType"] == "Image"
    assert resource["Metadata"]["Dockerfile"] == f"functions/{function}/Dockerfile"
    assert resource["Metadata"]["DockerContext"] == "."


def test_function_memory_covers_the_benchmarked_peak():
    """template.yaml's default memory must hold the end-to-end peak bench/report_bench.py measured, with room."""
    import json

    results = ROOT / "bench" / "results" / "report_speed.json"
    if not results.is_file():
        pytest.skip("bench/results/report_speed.json not there: run python bench/report_bench.py speed")
    largest = json.loads(results.read_text())["sizes"][-1]

    template = load_template(ROOT / "template.yaml")
    memory_mb = template["Parameters"]["ReportMemorySize"]["Default"]
    peak_mb = largest["end_to_end"]["peak_rss_mb"]
    assert largest["rows"] >= 1_000_000
    assert memory_mb >= 1.5 * peak_mb, (
        f"{memory_mb} MB configured, {peak_mb:.0f} MB measured at {largest['rows']:,} rows"
    )


def test_largest_report_function_covers_the_benchmarked_10m_peak():
    """A report function at the template's largest memory holds the end-to-end peak measured at 10M rows (the size
    its description tells operators to raise the memory for), with the same room as the default."""
    import json

    results = ROOT / "bench" / "results" / "report_scale.json"
    if not results.is_file():
        pytest.skip("bench/results/report_scale.json not there: run python bench/report_bench.py scale")
    measured = [entry["end_to_end"] for entry in json.loads(results.read_text())["sizes"] if "end_to_end" in entry]
    largest = max(measured, key=lambda e: e["rows"])
    assert largest["rows"] >= 10_000_000

    template = load_template(ROOT / "template.yaml")
    memory = template["Parameters"]["ReportMemorySize"]
    peak_mb = max(run["peak_rss_mb"] for run in largest["runs"]["now"])
    assert memory["MaxValue"] >= 1.5 * peak_mb, f"{memory['MaxValue']} MB at most, {peak_mb:.0f} MB measured"
    assert f"{peak_mb / 1000:.1f} GB" in memory["Description"], "the description quotes the measured peak"


def test_report_temporary_storage_holds_the_measured_duckdb_spill() -> None:
    import json

    results = ROOT / "bench" / "results" / "ingest_scale.json"
    if not results.is_file():
        pytest.skip("bench/results/ingest_scale.json not there: run python bench/ingest_bench.py")
    spills = [
        run["temp_disk_peak_mb"]
        for shape in json.loads(results.read_text())["shapes"].values()
        for size in shape["sizes"]
        for run in size["runs"].get("duckdb", [])
    ]
    assert spills, "the ingest bench recorded no DuckDB run"

    template = load_template(ROOT / "template.yaml")
    storage_mb = template["Parameters"]["ReportEphemeralStorage"]["Default"]
    function = template["Resources"]["InfluenceReportFunction"]["Properties"]
    assert "EphemeralStorage" in function
    assert storage_mb >= 3 * max(spills), f"{storage_mb} MB of /tmp, {max(spills):.0f} MB of spill measured"
