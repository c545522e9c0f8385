"""Builds over a busybox parent (the fixtures of tests/builds) with workflow documents."""

from tests.builds.conftest import make_recipe, parent_ami  # noqa: F401
