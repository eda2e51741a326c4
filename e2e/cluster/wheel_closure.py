"""Requirements of a wheelhouse that no wheel in it satisfies, for ANOTHER interpreter than the one running pip.

pip evaluates environment markers for the interpreter it runs in, so a wheelhouse built on the host misses what the
image's Python needs and the host's does not (``async-timeout; python_full_version < "3.11.3"`` for a 3.11.2 image).
Given the marker environment of the target interpreter (JSON, as printed by ``--print-environment`` run under it),
this walks the requirements of the top-level names and of every wheel in the folder, and prints the ones that no wheel
satisfies, one a line, ready for ``pip download --no-deps``. Nothing printed: the wheelhouse is complete.

    python3 wheel_closure.py --print-environment > env.json        (run with the TARGET python)
    python3 wheel_closure.py WHEELDIR env.json 'modelpilot[server]'  (run with any python that has pip)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any


def environment() -> dict[str, str]:
    """The marker environment of the running interpreter (as packaging.markers.default_environment)."""
    info = sys.implementation.version
    impl_version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        impl_version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": impl_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def wheels(folder: Path) -> dict[str, list[tuple[Any, list[str]]]]:
    """name -> [(version, Requires-Dist lines)] of every wheel in the folder."""
    from pip._vendor.packaging.utils import canonicalize_name  # pip's copy: the target python may have no packaging
    from pip._vendor.packaging.version import Version

    out: dict[str, list[tuple[Any, list[str]]]] = {}
    for path in folder.glob("*.whl"):
        with zipfile.ZipFile(path) as whl:
            meta_name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
            meta = Parser().parsestr(whl.read(meta_name).decode("utf-8", "replace"))
        name = canonicalize_name(meta["Name"])
        out.setdefault(name, []).append((Version(meta["Version"]), meta.get_all("Requires-Dist") or []))
    return out


def missing(folder: Path, env: dict[str, str], roots: list[str]) -> list[str]:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

    have = wheels(folder)
    todo = [(Requirement(r), "") for r in roots]
    seen: set[tuple[str, str]] = set()
    out: list[str] = []
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        candidates = [(v, deps) for v, deps in have.get(name, []) if req.specifier.contains(v, prereleases=True)]
        if not candidates:
            out.append(str(Requirement(f"{req.name}{req.specifier}")))
            continue
        _, deps = max(candidates, key=lambda c: c[0])
        for wanted in [""] + sorted(req.extras):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            todo.extend((Requirement(d), wanted) for d in deps)
    return sorted(set(out))


def main() -> int:
    if sys.argv[1:] == ["--print-environment"]:
        print(json.dumps(environment()))
        return 0
    folder, env_file, *roots = sys.argv[1:]
    for line in missing(Path(folder), json.loads(Path(env_file).read_text()), roots):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
