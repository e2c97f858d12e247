#!/usr/bin/env bash
# Runs the README's two commands, as written, on a fresh Debian 12 machine: a new bookworm tree made by
# debootstrap (variant minbase, plus ca-certificates and git: what a machine needs to have installed a
# rustup toolchain and cloned this repository), with this machine's Rust toolchain mounted into it and an
# empty cargo home. Inside, as root: `bash scripts/tutorial.sh`, then `CI=true bash scripts/test.sh`, from a
# fresh clone of the committed HEAD with ../shared beside it. Whatever the project forgot to install, or an
# install check that a look-alike file fools, fails here.
#
# Not part of the test suite (it takes a new tree, a full build and the whole suite); run it before a
# release or after changing scripts/install-deps.sh. Needs root and debootstrap (apt-get install debootstrap).
#
# Usage: bash scripts/fresh-machine.sh [--only tutorial|test] [--keep]
#   --only   runs one of the two commands
#   --keep   leaves the tree (in /var/tmp/mqtt-policy-fresh.*) for a look
#   MQTT_POLICY_FRESH_BASE  a cached minbase tarball to start from (made on first use under /var/tmp)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
only=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) only=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "usage: $0 [--only tutorial|test] [--keep]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "fresh-machine: run as root (it makes a chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh-machine: apt-get install debootstrap" >&2; exit 2; }
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
[ -x "$cargo_bin/cargo" ] || { echo "fresh-machine: no Rust toolchain at $cargo_bin" >&2; exit 2; }

# The base tree, made once: a tarball of a fresh minbase bookworm.
base=${MQTT_POLICY_FRESH_BASE:-/var/tmp/mqtt-policy-bookworm-minbase.tar}
if [ ! -f "$base" ]; then
    echo "== debootstrap bookworm (minbase, ca-certificates, git) into $base"
    tmp=$(mktemp -d /var/tmp/mqtt-policy-debootstrap.XXXXXX)
    chmod 755 "$tmp" # the tree's / (mktemp makes it 0700, which only root could enter)
    debootstrap --variant=minbase --include=ca-certificates,git bookworm "$tmp" http://deb.debian.org/debian >/dev/null
    tar -C "$tmp" -cf "$base.partial" .
    mv "$base.partial" "$base"
    rm -rf "$tmp"
fi

tree=$(mktemp -d /var/tmp/mqtt-policy-fresh.XXXXXX)
mounts=()
cleanup() {
    local m
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
    if [ "$keep" = 1 ]; then echo "tree kept: $tree"; else rm -rf "$tree"; fi
}
trap cleanup EXIT
tar -C "$tree" -xf "$base"
# A machine's / is 0755 (mktemp's 0700, or a tarball made from such a directory, would keep every
# unprivileged user, as the rabbitmq user of the cluster test, out of the whole tree).
chmod 755 "$tree"
bind() { mkdir -p "$tree$2"; mount --bind "$1" "$tree$2"; mounts+=("$tree$2"); }
bind /proc /proc
bind /dev /dev
bind /dev/pts /dev/pts
bind /sys /sys
bind "$rustup_home" /opt/rustup
bind "$cargo_bin" /opt/cargo-bin
cp /etc/resolv.conf "$tree/etc/resolv.conf"
# debootstrap writes no /etc/hosts; every installed Debian system has one naming localhost.
[ -f "$tree/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$tree/etc/hosts"
# The certificate authorities this machine's image adds for its network (a fresh machine of this kind
# has them): without them cargo cannot reach the crate registry from the tree.
if [ -d /usr/local/share/ca-certificates ]; then
    cp -r /usr/local/share/ca-certificates/. "$tree/usr/local/share/ca-certificates/"
    chroot "$tree" update-ca-certificates >/dev/null 2>&1 || true
fi
# The apt sources a machine of this kind has (bookworm, its updates and security archive) instead of
# debootstrap's bookworm alone.
if [ -d /etc/apt/sources.list.d ] && ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    rm -f "$tree/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/*.sources "$tree/etc/apt/sources.list.d/"
fi

# A fresh clone of what is committed, with ../shared beside it as CI has it.
git clone -q "$root" "$tree/root/work/mqtt-policy"
[ -d "$root/../shared" ] && cp -r "$root/../shared" "$tree/root/work/shared"

inside() {
    chroot "$tree" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/opt/cargo-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        RUSTUP_HOME=/opt/rustup CARGO_HOME=/root/.cargo CI="${CI:-}" \
        bash -c "cd /root/work/mqtt-policy && $1"
}
status=0
if [ "$only" != test ]; then
    echo "== fresh machine: bash scripts/tutorial.sh"
    inside "bash scripts/tutorial.sh" || status=1
fi
if [ "$only" != tutorial ] && [ "$status" = 0 ]; then
    echo "== fresh machine: bash scripts/test.sh"
    CI=true inside "bash scripts/test.sh" || status=1
fi
[ "$status" = 0 ] && echo "fresh machine: both commands passed" || echo "fresh machine: FAILED" >&2
exit "$status"
