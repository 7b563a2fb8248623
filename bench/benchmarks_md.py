"""Writes one benchmark's section of docs/BENCHMARKS.md, leaving the other sections as they are."""
from __future__ import annotations

import datetime
import os
import pathlib
import platform
import re
import shlex
import sys

BENCHMARKS_MD = pathlib.Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replaces (or appends) the section `## name` with body, command, machine and date."""
    command = "python " + " ".join(shlex.quote(arg) for arg in sys.argv)
    section = (f"## {name}\n\n{body.strip()}\n\n"
               f"- command: `{command}`\n- machine: {machine_description()}\n"
               f"- date: {datetime.date.today().isoformat()}\n")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else (
        "# Benchmarks\n\nFigures measured on this project's machines by the scripts in bench/. "
        "Each section says the command that produced it.\n")
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) \
        else text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_MD.parent.mkdir(exist_ok=True)
    BENCHMARKS_MD.write_text(text)
