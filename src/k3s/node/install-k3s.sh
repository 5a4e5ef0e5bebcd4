#!/bin/sh
# install-k3s.sh: install or update k3s on a Flatcar node. Shipped with flatcar-k3s, uploaded over
# SFTP and run as root (sudo) with arguments quoted by src/shell/quote.ts.
#
# Why not get.k3s.io: on Flatcar /usr is read-only (binaries go to /opt/bin) and upstream install.sh's
# SELinux detection has aborted on Flatcar ("Failed to find the k3s-selinux policy", k3s#14018).
# This script does only what Flatcar needs: fetch (or take an uploaded) binary, verify its sha256,
# install it to /opt/bin, install the config and manifests prepared by flatcar-k3s, write the systemd
# unit, and start it. Re-running with the same inputs changes nothing.
#
# Usage: install-k3s.sh --role server|agent --version vX.Y.Z+k3sN --sha256 HEX
#                       (--url URL | --binary PATH) [--config PATH] [--manifest PATH]...
#        install-k3s.sh --binary-only --version … --sha256 … (--url URL | --binary PATH)
#          (only the verified binary and its links: done ahead, outside the one-join-at-a-time order)
# Staged files (--binary, --config, --manifest) are moved into place and deleted.
# Last line on success: "RESULT unchanged", "RESULT installed" or "RESULT binary".
set -eu
umask 022

BIN_DIR=/opt/bin
CONFIG_DIR=/etc/rancher/k3s
MANIFEST_DIR=/var/lib/rancher/k3s/server/manifests
SYSTEMD_DIR=/etc/systemd/system

role=''
version=''
sha256=''
url=''
binary=''
config=''
manifests=''
binary_only=0

say() { printf 'flatcar-k3s: %s\n' "$*"; }
die() { printf 'flatcar-k3s: error: %s\n' "$*" >&2; exit 1; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --role) need "$@"; role=$2; shift 2 ;;
    --version) need "$@"; version=$2; shift 2 ;;
    --sha256) need "$@"; sha256=$2; shift 2 ;;
    --url) need "$@"; url=$2; shift 2 ;;
    --binary) need "$@"; binary=$2; shift 2 ;;
    --config) need "$@"; config=$2; shift 2 ;;
    --manifest) need "$@"; manifests="$manifests $2"; shift 2 ;;
    --binary-only) binary_only=1; shift ;;
    *) die "unknown argument: $1" ;;
  esac
done

case "$role" in
  server) unit=k3s; mode=server; type=notify ;;
  agent) unit=k3s-agent; mode=agent; type=exec ;;
  *) [ "$binary_only" = 1 ] || die "--role must be server or agent (given: '$role')" ;;
esac
printf '%s' "$version" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$' || die "--version must look like v1.33.4+k3s1 (given: '$version')"
printf '%s' "$sha256" | grep -Eq '^[0-9a-f]{64}$' || die "--sha256 must be 64 lower-case hex digits"
if [ -z "$url" ] && [ -z "$binary" ]; then die "give --url or --binary"; fi
for f in $config $manifests $binary; do [ -f "$f" ] || die "staged file $f is missing"; done

changed=0
file_sha() { sha256sum "$1" | cut -d' ' -f1; }

# 1. The binary, verified before it replaces anything.
if [ -x "$BIN_DIR/k3s" ] && [ "$(file_sha "$BIN_DIR/k3s")" = "$sha256" ]; then
  say "k3s $version already in $BIN_DIR/k3s (sha256 matches)"
  [ -z "$binary" ] || rm -f "$binary"
else
  mkdir -p "$BIN_DIR"
  rm -f "$BIN_DIR"/.k3s.new.* # left by a run that was killed mid-download
  tmp="$BIN_DIR/.k3s.new.$$"
  trap 'rm -f "$tmp"' EXIT
  if [ -n "$binary" ]; then
    say "installing the uploaded k3s $version"
    mv -f "$binary" "$tmp"
  else
    say "downloading k3s $version"
    curl -sSfL --retry 5 --retry-delay 2 --connect-timeout 20 -o "$tmp" "$url" || die "download failed: $url"
  fi
  got=$(file_sha "$tmp")
  if [ "$got" != "$sha256" ]; then
    rm -f "$tmp"
    die "sha256 mismatch for k3s $version: expected $sha256, got $got; the binary was not installed"
  fi
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DIR/k3s"
  trap - EXIT
  say "installed $BIN_DIR/k3s (sha256 $sha256)"
  changed=1
fi
for link in kubectl crictl ctr; do
  if [ "$(readlink "$BIN_DIR/$link" 2>/dev/null || true)" != k3s ]; then
    ln -sfn k3s "$BIN_DIR/$link"
  fi
done

if [ "$binary_only" = 1 ]; then
  echo "RESULT binary"
  exit 0
fi

# install_secret SRC DEST: move a staged file into place with mode 0600, if its content differs.
install_secret() {
  mkdir -p "$(dirname "$2")"
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    rm -f "$1"
    chmod 0600 "$2"
    return 0
  fi
  cp "$1" "$2.new.$$"
  chmod 0600 "$2.new.$$"
  mv -f "$2.new.$$" "$2"
  rm -f "$1"
  say "wrote $2"
  changed=1
}

# 2. Config and (servers only) auto-deployed manifests.
if [ -n "$config" ]; then install_secret "$config" "$CONFIG_DIR/config.yaml"; fi
for m in $manifests; do
  if [ "$role" = server ]; then
    install_secret "$m" "$MANIFEST_DIR/$(basename "$m")"
  else
    rm -f "$m"
  fi
done

# 3. The systemd unit.
unit_file="$SYSTEMD_DIR/$unit.service"
unit_tmp="$unit_file.new.$$"
mkdir -p "$SYSTEMD_DIR"
cat > "$unit_tmp" <<UNIT
# Written by flatcar-k3s (install-k3s.sh) for k3s $version
[Unit]
Description=Lightweight Kubernetes ($mode)
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=$type
EnvironmentFile=-$SYSTEMD_DIR/$unit.service.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/usr/sbin/modprobe br_netfilter
ExecStartPre=-/usr/sbin/modprobe overlay
ExecStart=$BIN_DIR/k3s $mode
UNIT
if [ -f "$unit_file" ] && cmp -s "$unit_tmp" "$unit_file"; then
  rm -f "$unit_tmp"
else
  mv -f "$unit_tmp" "$unit_file"
  say "wrote $unit_file"
  changed=1
fi

# 4. Start (or restart after a change). --no-block: flatcar-k3s waits for the node itself, with progress.
# A unit still "activating" (a server joining etcd) is left alone when nothing changed: restarting it
# mid-join would only start the join again.
state=$(systemctl is-active "$unit.service" 2>/dev/null || true)
if [ "$changed" = 0 ] && { [ "$state" = active ] || [ "$state" = activating ]; }; then
  say "k3s $version is installed and $unit is $state; nothing to do"
  echo "RESULT unchanged"
  exit 0
fi
systemctl daemon-reload
if [ "$state" = active ] || [ "$state" = activating ]; then
  say "restarting $unit"
  systemctl restart --no-block "$unit.service"
  systemctl enable "$unit.service"
else
  say "starting $unit"
  systemctl enable --now --no-block "$unit.service"
fi
echo "RESULT installed"
