#!/bin/bash
# Builds the amphora image for the `nova` compute driver: Debian (debootstrap), Node.js from Debian,
# the agent (bin/, amphora/, common/ and the production node_modules from the npm registry) started
# by systemd from the settings the driver puts on the config drive. See amphora/image/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/amphora/image

SUITE=${ARGONAUT_IMAGE_SUITE:-trixie}
MIRROR=${ARGONAUT_IMAGE_MIRROR:-http://deb.debian.org/debian}
CACHE=${ARGONAUT_IMAGE_CACHE:-$ROOT/var/image-cache}
OUT=${ARGONAUT_IMAGE_OUT:-$ROOT/var/image}
NAME=${ARGONAUT_IMAGE_NAME:-argonaut-amphora}
FORMAT=${ARGONAUT_IMAGE_FORMAT:-qcow2}
NPM=${ARGONAUT_NPM:-npm}
FORCE=0

# What the amphora runs on: systemd, a kernel, Node.js, and the tools the data plane calls.
PACKAGES=(
    systemd systemd-sysv udev dbus kmod linux-image-amd64 initramfs-tools
    nodejs iproute2 nftables iputils-arping iputils-ping procps ca-certificates
    mount util-linux
)

function usage {
    cat <<USAGE
Usage: amphora/image/build.sh [--out DIR] [--cache DIR] [--format qcow2|raw] [--force] [-h|--help]

Builds a bootable amphora image (BIOS, syslinux; Debian $SUITE with Node.js from Debian, the
Argonaut agent as the systemd service argonaut-amphora) into OUT/$NAME.FORMAT, plus its kernel
and initrd (OUT/$NAME.vmlinuz, OUT/$NAME.initrd) for direct-kernel boots. Needs root, debootstrap,
npm, mkfs.ext4, mkfs.vfat, syslinux, mtools, sfdisk and qemu-img.

At boot, argonaut-amphora-config-drive.service reads the config drive (label config-2) that the
nova compute driver asks for and writes the files of its #cloud-config user data (the agent
settings, /etc/argonaut/amphora-agent.yaml); then argonaut-amphora.service starts the agent.
No account can log in (root is locked, no getty, no sshd); the console is ttyS0 (and tty0).

Caching: the Debian base (one tarball per suite, mirror and package list) and the production
node_modules (one per package-lock.json) are kept in CACHE; an image whose inputs (base, lock file,
the project's files, this folder) did not change is not rebuilt (OUT/$NAME.inputs holds their hash).

Options:
  --out DIR      Output folder (ARGONAUT_IMAGE_OUT, default var/image in the checkout).
  --cache DIR    Cache folder (ARGONAUT_IMAGE_CACHE, default var/image-cache in the checkout).
  --format F     qcow2 (default; ARGONAUT_IMAGE_FORMAT) or raw.
  --force        Rebuild the image even when its inputs did not change (the caches are kept).
  -h, --help     Show this help.

Environment: ARGONAUT_IMAGE_SUITE (default trixie: its nodejs is 20), ARGONAUT_IMAGE_MIRROR
(default $MIRROR), ARGONAUT_IMAGE_NAME (default argonaut-amphora), ARGONAUT_NPM (default npm).
USAGE
}

while (($#)); do
    case $1 in
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --cache) CACHE=${2:?--cache needs a folder}; shift 2 ;;
        --format) FORMAT=${2:?--format needs qcow2 or raw}; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'build.sh: unknown argument %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $FORMAT == qcow2 || $FORMAT == raw ]] || { echo "build.sh: --format must be qcow2 or raw" >&2; exit 2; }

START=$SECONDS
function step { printf '[image %4ds] %s\n' $((SECONDS - START)) "$*"; }
function die { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
# remove_tree <dir>: a failed debootstrap may leave /proc or /sys mounted inside: unmount first.
function remove_tree {
    local mnt
    awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
        umount -l "$mnt"
    done
    rm -rf --one-file-system "$1"
}

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, file ownership in the image)"
# need <command> <Debian package>
function need { command -v "$1" >/dev/null || die "$1 is missing (Debian package $2)"; }
mkdir -p "$CACHE" "$OUT"
CACHE=$(cd "$CACHE" && pwd)
OUT=$(cd "$OUT" && pwd)

# The project's files the agent needs: tracked and untracked-but-not-ignored files of a git
# checkout, every file otherwise.
function project_files {
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -co --exclude-standard -- bin amphora common package.json tsconfig.json |
            while read -r f; do [[ -f $ROOT/$f ]] && printf '%s\n' "$f"; done
    else
        (cd "$ROOT" && find bin amphora common -type f && printf '%s\n' package.json tsconfig.json)
    fi | LC_ALL=C sort
}

# --- 1. the Debian base (cached) ---------------------------------------------------------------
# The initrd carries only the drivers of the disks Nova attaches (virtio-blk, virtio-scsi, IDE,
# SATA, NVMe) and ext4: a third of MODULES=most, which BIOS loads far faster under emulation.
INITRD_MODULES=(virtio_pci virtio_blk virtio_scsi sd_mod ata_piix ahci nvme ext4)
BASE_KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}" initrd "${INITRD_MODULES[@]}" | sha256sum | cut -c1-16)
BASE_TAR=$CACHE/base-$SUITE-$BASE_KEY.tar
if [[ -s $BASE_TAR ]]; then
    step "Debian $SUITE base: cached ($BASE_TAR)"
else
    need debootstrap debootstrap
    step "Debian $SUITE base: debootstrap from $MIRROR (a few minutes)"
    base=$(mktemp -d "$CACHE/base.XXXXXX")
    trap 'remove_tree "$base"' EXIT
    include=$(IFS=,; echo "${PACKAGES[*]}")
    debootstrap --variant=minbase --include="$include" "$SUITE" "$base/root" "$MIRROR" > "$base/debootstrap.log" 2>&1 ||
        { tail -n 30 "$base/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    step "Debian $SUITE base: a small initrd"
    echo MODULES=list > "$base/root/etc/initramfs-tools/conf.d/amphora.conf"
    printf '%s\n' "${INITRD_MODULES[@]}" >> "$base/root/etc/initramfs-tools/modules"
    chroot "$base/root" update-initramfs -u -k all > "$base/initramfs.log" 2>&1 ||
        { cat "$base/initramfs.log" >&2; die "update-initramfs failed (log above)"; }
    rm -rf "$base/root/var/cache/apt/archives/"*.deb "$base/root/var/lib/apt/lists/"*
    tar -C "$base/root" --numeric-owner --xattrs -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    remove_tree "$base"
    trap - EXIT
    find "$CACHE" -maxdepth 1 -name "base-$SUITE-*.tar" ! -name "${BASE_TAR##*/}" -print -delete | sed 's/^/  removed the outdated /'
    step "Debian $SUITE base: cached as $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
fi

# --- 2. the production node_modules (cached per lock file) -------------------------------------
LOCK_KEY=$(sha256sum < "$ROOT/package-lock.json" | cut -c1-16)
MODULES=$CACHE/node_modules-$LOCK_KEY
if [[ -d $MODULES/node_modules ]]; then
    step "node_modules: cached ($MODULES)"
else
    need "$NPM" npm
    step "node_modules: npm ci --omit=dev from the registry"
    rm -rf "$MODULES.tmp" && mkdir -p "$MODULES.tmp"
    cp "$ROOT/package.json" "$ROOT/package-lock.json" "$MODULES.tmp/"
    # --ignore-scripts: no native build (sqlite3 is the API's, never the agent's); esbuild, which
    # tsx runs, comes as its platform package.
    (cd "$MODULES.tmp" && "$NPM" ci --omit=dev --ignore-scripts --no-audit --no-fund --cache "$CACHE/npm" >npm.log 2>&1) ||
        { tail -n 30 "$MODULES.tmp/npm.log" >&2; die "npm ci failed (log above)"; }
    rm -rf "$MODULES" && mv "$MODULES.tmp" "$MODULES"
    find "$CACHE" -maxdepth 1 -name 'node_modules-*' ! -name "${MODULES##*/}" -print -exec rm -rf {} + | sed 's/^/  removed the outdated /'
    step "node_modules: cached ($(du -sh "$MODULES/node_modules" | cut -f1))"
fi

# --- 3. the image (skipped when its inputs did not change) -------------------------------------
INPUTS=$( {
    printf '%s\n' "$BASE_KEY" "$LOCK_KEY" "$FORMAT"
    (cd "$ROOT" && project_files | xargs -d '\n' sha256sum)
    (cd "$HERE" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum)
} | sha256sum | cut -c1-16)
IMAGE=$OUT/$NAME.$FORMAT
if ((FORCE == 0)) && [[ -s $IMAGE && -s $OUT/$NAME.inputs && $(cat "$OUT/$NAME.inputs") == "$INPUTS" ]]; then
    step "image: unchanged inputs ($INPUTS), kept $IMAGE"
    exit 0
fi
rm -f "$OUT/$NAME.inputs"
need mkfs.ext4 e2fsprogs; need mkfs.vfat dosfstools; need syslinux syslinux; need mcopy mtools
need sfdisk fdisk; need qemu-img qemu-utils
MBR=/usr/lib/syslinux/mbr/mbr.bin
[[ -f $MBR ]] || die "$MBR is missing (Debian package syslinux-common)"

WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir "$R"
step "image: unpacking the base"
tar -C "$R" --numeric-owner --xattrs -xf "$BASE_TAR"

step "image: the agent (/opt/argonaut) and its node_modules"
A=$R/opt/argonaut
mkdir -p "$A"
(cd "$ROOT" && project_files | tar -cf - --no-recursion -T -) | tar -C "$A" -xf -
cp -a "$MODULES/node_modules" "$A/node_modules"
chown -R root:root "$A"
# tsx compiles each TypeScript file at its first import and caches the result under $TMPDIR; the
# services set TMPDIR=/var/cache/argonaut, and loading every module once here (--help loads the
# whole import graph) fills that cache, which spares an emulated amphora minutes of compiling at
# boot. tsx drops entries older than about a week; then they are compiled again, once.
step "image: compiling the TypeScript once (tsx cache)"
install -d -m 0700 "$R/var/cache/argonaut"
chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/var/cache/argonaut HOME=/root \
    /bin/sh -c 'cd /opt/argonaut && node --import tsx bin/argonaut-amphora-config-drive.ts --help && node --import tsx bin/argonaut-amphora.ts --help' >/dev/null ||
    die "the agent does not load in the image (node --import tsx bin/argonaut-amphora.ts --help)"

step "image: systemd units, network, console, hardening"
install -m 0644 "$HERE/files/argonaut-amphora.service" "$HERE/files/argonaut-amphora-config-drive.service" "$R/etc/systemd/system/"
install -m 0644 "$HERE/files/10-amphora-dhcp.network" "$R/etc/systemd/network/"
install -d -m 0700 "$R/etc/argonaut"
echo amphora > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tamphora\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
printf 'UUID=%s / ext4 defaults,errors=remount-ro 0 1\n' "$ROOT_UUID" > "$R/etc/fstab"
: > "$R/etc/machine-id"   # a fresh one on each amphora's first boot
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
for unit in argonaut-amphora.service argonaut-amphora-config-drive.service; do
    ln -sf "/etc/systemd/system/$unit" "$R/etc/systemd/system/multi-user.target.wants/$unit"
done
ln -sf /lib/systemd/system/systemd-networkd.service "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# No logins at all: root's password locked, no getty on any console, no sshd installed.
chroot "$R" passwd --lock root >/dev/null
for unit in getty@.service serial-getty@.service console-getty.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$unit"
done
# An appliance: no apt or maintenance timers; the first boot skips the "/usr was updated" jobs
# (ldconfig, journal catalog), done here.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer; do
    ln -sf /dev/null "$R/etc/systemd/system/$unit"
done
chroot "$R" ldconfig
chroot "$R" journalctl --update-catalog
touch "$R/etc/.updated" "$R/var/.updated"
# Journald: keep logs in memory (an amphora is disposable); the services copy theirs to the console.
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=64M\n' > "$R/etc/systemd/journald.conf.d/amphora.conf"

step "image: kernel and initrd"
KERNEL=$(find "$R/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
INITRD=$(find "$R/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
[[ -n $KERNEL && -n $INITRD ]] || die "no kernel or initrd in the base's /boot"
CMDLINE="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8 quiet systemd.show_status=1"
cp "$KERNEL" "$WORK/vmlinuz" && cp "$INITRD" "$WORK/initrd"
printf '%s\n' "$CMDLINE" > "$WORK/cmdline"

step "image: filesystems and disk"
BOOT_MB=$(( ($(du -m "$WORK/vmlinuz" | cut -f1) + $(du -m "$WORK/initrd" | cut -f1)) * 2 + 16 ))
USED_MB=$(du -sm "$R" | cut -f1)
ROOT_MB=$(( USED_MB + USED_MB / 4 + 256 ))
mkfs.vfat -C -n AMPBOOT "$WORK/boot.img" $((BOOT_MB * 1024)) >/dev/null
cat > "$WORK/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT amphora
PROMPT 0
TIMEOUT 0
LABEL amphora
  LINUX /vmlinuz
  INITRD /initrd
  APPEND $CMDLINE
CFG
mcopy -i "$WORK/boot.img" "$WORK/vmlinuz" "$WORK/initrd" "$WORK/syslinux.cfg" ::/
syslinux --install "$WORK/boot.img"
mkfs.ext4 -q -F -L amphora-root -U "$ROOT_UUID" -d "$R" "$WORK/root.img" "${ROOT_MB}M" >/dev/null
# MBR: syslinux's boot code, partition 1 (active) the FAT /boot, partition 2 the ext4 root.
DISK=$WORK/disk.raw
truncate -s $(( (1 + BOOT_MB + ROOT_MB) * 1024 * 1024 )) "$DISK"
sfdisk -q "$DISK" <<PARTS
label: dos
start=1MiB, size=${BOOT_MB}MiB, type=c, bootable
start=$((1 + BOOT_MB))MiB, size=${ROOT_MB}MiB, type=83
PARTS
dd if="$MBR" of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/boot.img" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$DISK" bs=1M seek=$((1 + BOOT_MB)) conv=notrunc,sparse status=none

step "image: writing $IMAGE"
if [[ $FORMAT == qcow2 ]]; then
    qemu-img convert -f raw -O qcow2 "$DISK" "$IMAGE.tmp"
else
    cp --sparse=always "$DISK" "$IMAGE.tmp"
fi
mv "$IMAGE.tmp" "$IMAGE"
mv "$WORK/vmlinuz" "$OUT/$NAME.vmlinuz"
mv "$WORK/initrd" "$OUT/$NAME.initrd"
mv "$WORK/cmdline" "$OUT/$NAME.cmdline"
printf '%s\n' "$INPUTS" > "$OUT/$NAME.inputs"
step "image: done: $IMAGE ($(du -h "$IMAGE" | cut -f1) on disk, root ${ROOT_MB} MiB)"
