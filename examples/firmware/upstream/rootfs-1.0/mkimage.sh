#!/bin/sh
# Packs the binaries found in the sysroot into a deterministic image.
set -eu
sysroot=$1 out=$2
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$sysroot" -cf "$out" bin
