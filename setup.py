import re

from setuptools import find_packages, setup

# one source for the version: keepalive_tx/_version.py (keepalive_tx.__version__, shown by -v)
with open("keepalive_tx/_version.py", encoding="utf-8") as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="keepalive_tx",
    version=VERSION,
    description="keepalived (VRRP failover, LVS health checks, SMTP alerts) rebuilt on Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-2.0-or-later",
    license_files=["LICENSE"],
    author="keepalive_tx developers",
    keywords="keepalived vrrp lvs ipvs high-availability failover twisted",
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: No Input/Output (Daemon)",
        "Framework :: Twisted",
        "Intended Audience :: System Administrators",
        "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.13",
        "Topic :: System :: Clustering",
        "Topic :: System :: Networking",
        "Topic :: System :: Networking :: Monitoring",
    ],
    project_urls={
        # keepalive_tx re-implements keepalived: its configuration language and
        # behaviour are documented upstream.
        "keepalived (upstream, configuration reference)": "https://www.keepalived.org/",
        "keepalived.conf(5)": "https://www.keepalived.org/manpage.html",
    },
    python_requires=">=3.11",
    packages=find_packages(include=["keepalive_tx", "keepalive_tx.*"]) + ["twisted.plugins"],
    package_data={"keepalive_tx": ["py.typed", "demo/keepalived.conf"]},
    install_requires=[
        "twisted>=24.7",
        # netlink message codecs below pyroute2's public API: tested on 0.9.x only
        "pyroute2>=0.9,<0.10",
        "pyopenssl",
        "service-identity",
        "ply==3.11",
        # /metrics (pure Python, no dependencies of its own)
        "prometheus-client>=0.16",
    ],
    extras_require={"test": ["hypothesis", "ruff", "wheel", "aiosmtpd", "mypy", "mypy-zope"]},
    entry_points={"console_scripts": ["genhash = keepalive_tx.genhash:main"]},
)
