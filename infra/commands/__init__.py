"""The `imagelift` subcommands that need this checkout's tooling (models build, local stack, demo).

Registered through the `imagelift.commands` entry-point group (infra/pyproject.toml), so the library never imports
`infra`: `imagelift` finds them only where imagelift-infra is installed.
"""
