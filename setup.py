import re

from setuptools import find_packages, setup

# one source for the version: keepalive_tx.__version__ (also shown by -v)
with open("keepalive_tx/__init__.py", encoding="utf-8") as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="keepalive_tx",
    version=VERSION,
    description="keepalived (VRRP failover, LVS health checks, SMTP alerts) rebuilt on Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["keepalive_tx", "keepalive_tx.*"]) + ["twisted.plugins"],
    package_data={"keepalive_tx": ["py.typed"]},
    install_requires=[
        "twisted>=24.7",
        "pyroute2>=0.9",
        "pyopenssl",
        "service-identity",
        "ply==3.11",
    ],
    extras_require={"test": ["hypothesis", "ruff", "wheel", "aiosmtpd", "prometheus-client"]},
    entry_points={"console_scripts": ["genhash = keepalive_tx.genhash:main"]},
)
