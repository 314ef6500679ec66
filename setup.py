"""Build glue for what pyproject.toml cannot say: the migrations ship inside the package.

The migration scripts live in the top-level ``alembic/`` folder (the layout the project
keeps); the wheel carries them as the package ``monitor.migrations`` so that a plain
``pip install .`` (a wheel, pipx, a Docker image) migrates exactly as a checkout does.
``monitor/store/migrate.py`` finds them there, or in the checkout.  Everything else about
the build is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["monitor", "monitor.*", "crawler", "crawler.*"]),
        "monitor.migrations",
        "monitor.migrations.versions",
    ],
    package_dir={"monitor.migrations": "alembic"},
    package_data={
        "monitor": ["demo_data/**/*", "py.typed", "console/templates/*", "console/static/*"],
        "monitor.migrations": ["script.py.mako"],
    },
)
