"""Write a tiny installed distribution whose wheel is platform-specific and whose RECORD lists a ``.so``."""

from __future__ import annotations

from pathlib import Path


def make_compiled_distribution(site: Path, name: str = "fastline", version: str = "1.0") -> Path:
    """Install ``name`` into ``site`` as pip would record a compiled wheel (the extension file itself is not needed
    for the check: the tags and the RECORD decide)."""
    package = site / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("SPEED = 2\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    so = f"{name}/_speedups.cpython-311-x86_64-linux-gnu.so"
    (info / "RECORD").write_text(
        f"{name}/__init__.py,,\n{so},,\n{info.name}/METADATA,,\n{info.name}/WHEEL,,\n{info.name}/RECORD,,\n"
    )
    return site
