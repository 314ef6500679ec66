"""Build glue for what pyproject.toml cannot say: the migrations ship inside the package.

The migration scripts live in the top-level ``alembic/`` folder (the layout the project
keeps); the wheel carries them as the package ``monitor.migrations`` so that a plain
``pip install .`` (a wheel, pipx, a Docker image) migrates exactly as a checkout does.
``monitor/store/migrate.py`` finds them there, or in the checkout.  Everything else about
the build is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        # Namespace packages too: the data folders (demo_data, the console's templates and
        # static files) are then packages of their own, as setuptools wants data to be.
        *find_namespace_packages(include=["monitor", "monitor.*", "crawler", "crawler.*"], exclude=["*.__pycache__"]),
        "monitor.migrations",
        "monitor.migrations.versions",
    ],
    package_dir={"monitor.migrations": "alembic"},
    package_data={
        "monitor": ["py.typed"],
        "monitor.demo_data": ["*"],
        "monitor.console.templates": ["*"],
        "monitor.console.static": ["*"],
        "monitor.migrations": ["script.py.mako"],
    },
)
