"""InfluenceReportFunction ships as a container image. These checks fail when that choice stops fitting.

Measured from this venv: the installed size of everything functions/influence_report/requirements.txt pulls in
(its dependency closure, file sizes from each distribution's RECORD). A zip function and all its layers may
hold 250 MB unzipped; an image may hold 10 GB. If the statistics stack ever fits a zip again, or the image
outgrows its budget, or the report starts importing something the image does not install, a test here fails.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "influence_report"
MB = 1024 * 1024
ZIP_LIMIT = 250 * MB  # unzipped function + layers
IMAGE_LIMIT = 10 * 1024 * MB  # uncompressed container image
BASE_IMAGE_ALLOWANCE = 800 * MB  # public.ecr.aws/lambda/python:3.12 itself (about 550 MB) with headroom
IMAGE_BUDGET = 1024 * MB  # our own ceiling for the added layers: cold starts grow with the image
REPORT_MODULES = [
    *sorted((ROOT / "layers" / "imagelift" / "influence").glob("*.py")),
    ROOT / "layers" / "imagelift" / "services" / "report_service.py",
    ROOT / "layers" / "imagelift" / "adapters" / "sales_store.py",
    ROOT / "layers" / "imagelift" / "adapters" / "category_records.py",
    ROOT / "layers" / "imagelift" / "adapters" / "report_store.py",
    ROOT / "layers" / "imagelift" / "config.py",
    FUNCTION_DIR / "app.py",
]


def _requirements() -> list[Requirement]:
    lines = (FUNCTION_DIR / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in (raw.split("#")[0].strip() for raw in lines) if line]


def _closure(names: list[str]) -> dict[str, md.Distribution]:
    env = default_environment()
    env["python_version"] = "3.12"
    env["python_full_version"] = "3.12.0"
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            pytest.fail(f"{name} is needed by the report image but is not installed in this venv")
        seen[name] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(req.name)
    return seen


def _installed_bytes(dist: md.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total


@pytest.fixture(scope="module")
def closure() -> dict[str, int]:
    dists = _closure([r.name for r in _requirements()])
    return {name: _installed_bytes(dist) for name, dist in dists.items()}


def test_the_statistics_stack_does_not_fit_a_zip_function(closure):
    stats_stack = _closure(["numpy", "pandas", "scipy", "statsmodels"])
    size = sum(closure[name] for name in stats_stack)
    print(f"numpy+pandas+scipy+statsmodels closure: {size / MB:.0f} MB (zip limit {ZIP_LIMIT / MB:.0f} MB)")
    assert size > ZIP_LIMIT, (
        f"the statistics stack is {size / MB:.0f} MB, under the {ZIP_LIMIT / MB:.0f} MB zip limit: a zip function "
        "with a layer would now fit; reconsider the container image"
    )


def test_the_image_fits_its_budget_and_the_lambda_limit(closure):
    code = sum(p.stat().st_size for p in (ROOT / "layers" / "imagelift").rglob("*.py"))
    added = sum(closure.values()) + code
    largest = sorted(closure.items(), key=lambda kv: -kv[1])[:5]
    print("image adds", f"{added / MB:.0f} MB;", ", ".join(f"{n} {s / MB:.0f} MB" for n, s in largest))
    assert added < IMAGE_BUDGET, (
        f"the report image adds {added / MB:.0f} MB, over its {IMAGE_BUDGET / MB:.0f} MB budget"
    )
    assert added + BASE_IMAGE_ALLOWANCE < IMAGE_LIMIT


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"imagelift", "__future__"}}


def test_everything_the_report_imports_is_in_the_image(closure):
    provided = md.packages_distributions()
    missing = {}
    for path in REPORT_MODULES:
        for module in _third_party_imports(path):
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in provided.get(module, [])}
            if not dists & closure.keys():
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported by the report but not installed by requirements.txt: {missing}"


def test_requirements_agree_with_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    for req in _requirements():
        if req.name.lower() in declared:
            assert str(req.specifier) == str(declared[req.name.lower()].specifier), req.name
        else:  # a transitive dependency of a declared one (scipy comes with statsmodels)
            assert req.name.lower() in _closure(list(declared)), f"{req.name} is not a dependency of the project"


def test_dockerfile_and_template_build_the_image_from_these_files():
    dockerfile = (FUNCTION_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.12\b", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile
    assert "COPY functions/influence_report/app.py" in dockerfile and 'CMD ["app.lambda_handler"]' in dockerfile

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    function = template["Resources"]["InfluenceReportFunction"]
    assert function["Properties"]["PackageType"] == "Image"
    assert function["Metadata"]["Dockerfile"] == "functions/influence_report/Dockerfile"
    assert function["Metadata"]["DockerContext"] == "."


def test_function_memory_covers_the_benchmarked_peak():
    """template.yaml's default memory must hold the end-to-end peak bench/report_bench.py measured, with room."""
    import json

    results = ROOT / "bench" / "results" / "report_speed.json"
    if not results.is_file():
        pytest.skip("bench/results/report_speed.json not there: run python bench/report_bench.py speed")
    largest = json.loads(results.read_text())["sizes"][-1]

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    memory_mb = template["Parameters"]["ReportMemorySize"]["Default"]
    peak_mb = largest["end_to_end"]["peak_rss_mb"]
    assert largest["rows"] >= 1_000_000
    assert memory_mb >= 1.5 * peak_mb, (
        f"{memory_mb} MB configured, {peak_mb:.0f} MB measured at {largest['rows']:,} rows"
    )
