#!/bin/sh
# Packs the binaries found in the sysroot into a deterministic image.
set -eu
sysroot=$1 out=$2
mkdir -p "$(dirname "$out")"
# Same files, same bytes: sorted names, fixed mtime and owners, and modes that
# do not depend on the umask the sysroot was made under.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode=u+rwX,go+rX,go-w --format=gnu -C "$sysroot" -cf "$out" bin
