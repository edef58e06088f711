"""samconfig.toml: `sam deploy` works without --guided, and what it overrides are real template parameters."""

from __future__ import annotations

import tomllib
from pathlib import Path

from infra.localstack.cloudformation import load_template

ROOT = Path(__file__).resolve().parents[2]


def template_parameters() -> dict:
    return load_template(ROOT / "template.yaml")["Parameters"]


def test_deploy_defaults_need_no_questions():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"] == "imagelift"
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"  # SAM makes the roles; nothing is named IAM
    assert deploy["resolve_s3"] is True
    assert deploy["resolve_image_repos"] is True  # both functions are container images
    assert deploy["confirm_changeset"] is True  # a change to retained data is looked at before it runs


def test_parameter_overrides_name_template_parameters_with_allowed_values():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = dict(
        pair.split("=", 1) for pair in config["default"]["deploy"]["parameters"]["parameter_overrides"].split()
    )
    parameters = template_parameters()
    for name, value in overrides.items():
        assert name in parameters, f"samconfig.toml overrides {name}, which template.yaml does not have"
        allowed = parameters[name].get("AllowedValues")
        if allowed:
            assert value in {str(v) for v in allowed}, (name, value)
