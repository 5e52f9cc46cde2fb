#!/bin/sh
# Regenerates the example's tarballs in ../mirror from the sources here, byte
# for byte (names sorted, mtime 0, owner 0/0, modes without group/other write,
# no gzip timestamp), and prints their sha256s. After editing a source here,
# run it and put the new sum in the module file (modules/<name>.toml).
set -eu
cd "$(dirname "$0")"
pack() {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --mode=go-w --format=gnu -cf - "$1"
}
pack libgreet-1.0 | gzip -n -9 >../mirror/libgreet-1.0.tar.gz
pack hello-1.0 | gzip -n -9 >../mirror/hello-1.0.tar.gz
pack banner-2.1 | xz -9 >../mirror/banner-2.1.tar.xz
pack rootfs-1.0 | zstd -q -f -19 -o ../mirror/rootfs-1.0.tar.zst
cd ../mirror
sha256sum ./*.tar.*
