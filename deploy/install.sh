#!/bin/sh
# Install (or upgrade, or remove) meshnode as a systemd service.
#
#   deploy/install.sh [--prefix /opt/meshnode] [--root /] [--no-start]
#   deploy/install.sh --uninstall [--purge] [--prefix …] [--root …]
#
# Run from a built checkout (npm install && npm run build). Idempotent: a
# second run gives the same files; an upgrade swaps the program directory
# and keeps the journal, the keys and the operator's config.
#
# --root DIR works inside a throwaway root (a debootstrap folder, a test's
# skeleton): users with systemd-sysusers --root, the unit enabled with
# systemctl --root, nothing started.
#
# --uninstall removes the program, unit, snippets and config, and keeps the
# state directory (journal, node key, audit logs) and a copy of the config
# in it; --purge removes those and the user as well.
set -eu

PREFIX=/opt/meshnode
ROOT=/
START=1
UNINSTALL=0
PURGE=0
SRC=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/}                      # "" for the real root, so "$R/etc" is "/etc"
UNIT="$R/etc/systemd/system/meshnode.service"
BIN="$R/usr/local/bin/meshnode"
COMPLETION="$R/etc/bash_completion.d/meshnode"
CONF_DIR="$R/etc/meshnode"
STATE="$R/var/lib/meshnode"
LIVE=0                           # a running systemd we may talk to
if [ -z "$R" ] && [ -d /run/systemd/system ]; then LIVE=1; fi

say() { echo "meshnode install: $*"; }

if [ "$(id -u)" != 0 ]; then echo "install.sh: run as root" >&2; exit 1; fi

if [ "$UNINSTALL" = 1 ]; then
  if [ "$LIVE" = 1 ]; then systemctl disable --now meshnode.service 2>/dev/null || true; fi
  if [ -z "$R" ]; then :; else systemctl --root="$ROOT" disable meshnode.service 2>/dev/null || true; fi
  # The node's nft table, if it is the one meshnode created (its comment says
  # so) and this is the real host: grants end now, not when leases run out.
  TABLE=$(sed -n 's/^table = "\([a-z][a-z0-9_]*\)".*/\1/p' "$CONF_DIR/meshnode.toml" 2>/dev/null | head -n 1)
  TABLE=${TABLE:-meshnode}
  if [ -z "$R" ] && command -v nft >/dev/null 2>&1 &&
    nft list table inet "$TABLE" 2>/dev/null | grep -q 'comment "meshnode: managed by the meshnode nft executor"'; then
    nft delete table inet "$TABLE" && say "removed nft table inet $TABLE"
  fi
  rm -f "$UNIT" "$BIN" "$COMPLETION" "$R/usr/lib/sysusers.d/meshnode.conf" "$R/usr/lib/tmpfiles.d/meshnode.conf"
  rm -rf "$R$PREFIX"
  if [ -f "$CONF_DIR/meshnode.toml" ] && [ -d "$STATE" ] && [ "$PURGE" = 0 ]; then
    cp -p "$CONF_DIR/meshnode.toml" "$STATE/meshnode.toml.bak"
    say "config kept as $STATE/meshnode.toml.bak"
  fi
  rm -rf "$CONF_DIR"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE" "$R/run/meshnode"
    if grep -q '^meshnode:' "$R/etc/passwd" 2>/dev/null; then
      userdel --root "$ROOT" meshnode 2>/dev/null || true
    fi
    if grep -q '^meshnode:' "$R/etc/group" 2>/dev/null; then
      groupdel --root "$ROOT" meshnode 2>/dev/null || true
    fi
    say "purged state, keys and the meshnode user and group"
  else
    say "removed; state and keys kept in $STATE"
  fi
  if [ "$LIVE" = 1 ]; then systemctl daemon-reload; fi
  exit 0
fi

# --- install / upgrade -------------------------------------------------------

[ -f "$SRC/dist/supervisor/cli.js" ] || { echo "install.sh: build first (npm install && npm run build)" >&2; exit 1; }
NODE=$(command -v node || true)
[ -n "$NODE" ] || { echo "install.sh: node (>= 20) not found" >&2; exit 1; }
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || { echo "install.sh: node $NODE_MAJOR is too old; meshnode needs 20 or later" >&2; exit 1; }

# The program: staged beside the old one, then swapped in, so a failed copy
# never leaves half an installation.
say "program → $R$PREFIX"
mkdir -p "$(dirname "$R$PREFIX")"
rm -rf "$R$PREFIX.new"
mkdir -p "$R$PREFIX.new"
cp -a "$SRC/dist" "$SRC/package.json" "$SRC/README.md" "$SRC/docs" "$SRC/deploy" "$R$PREFIX.new/"
[ -f "$SRC/package-lock.json" ] && cp -a "$SRC/package-lock.json" "$R$PREFIX.new/"
cp -a "$SRC/node_modules" "$R$PREFIX.new/"
rm -rf "$R$PREFIX.new/dist/test"
(cd "$R$PREFIX.new" && npm prune --omit=dev --no-audit --no-fund >/dev/null 2>&1) || say "npm prune failed; dev dependencies stay"
chmod -R u=rwX,go=rX "$R$PREFIX.new"
rm -rf "$R$PREFIX.old"
[ -d "$R$PREFIX" ] && mv "$R$PREFIX" "$R$PREFIX.old"
mv "$R$PREFIX.new" "$R$PREFIX"
rm -rf "$R$PREFIX.old"

# User and directories. An empty --root has no /etc yet: sysusers needs the
# directory (it creates passwd, group and shadow in it, locked).
mkdir -p "$R/etc" "$R/var/lib" "$R/usr/lib"
install -D -m 0644 "$SRC/deploy/meshnode.sysusers" "$R/usr/lib/sysusers.d/meshnode.conf"
install -D -m 0644 "$SRC/deploy/meshnode.tmpfiles" "$R/usr/lib/tmpfiles.d/meshnode.conf"
if [ -z "$R" ]; then
  systemd-sysusers /usr/lib/sysusers.d/meshnode.conf
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/meshnode.conf
else
  # With --root, the snippet's path is the host's: name the copy inside the root.
  systemd-sysusers --root="$ROOT" "$R/usr/lib/sysusers.d/meshnode.conf"
  systemd-tmpfiles --root="$ROOT" --create "$R/usr/lib/tmpfiles.d/meshnode.conf"
fi
MUID=$(awk -F: '$1=="meshnode"{print $3}' "$R/etc/passwd")
MGID=$(awk -F: '$1=="meshnode"{print $3}' "$R/etc/group")
[ -n "$MUID" ] && [ -n "$MGID" ] || { echo "install.sh: the meshnode user was not created" >&2; exit 1; }

# The operator's config is never overwritten.
mkdir -p "$CONF_DIR"
chown "0:$MGID" "$CONF_DIR"
chmod 0750 "$CONF_DIR"
if [ ! -f "$CONF_DIR/meshnode.toml" ]; then
  # The example holds the code's defaults (./var, a socket beside it); the
  # installed copy names the service's directories, so the CLI run by an
  # admin from any directory reaches the node with no flags.
  sed -e 's#^state_dir = "./var"  #state_dir = "/var/lib/meshnode"#' \
      -e 's#^socket = ""  #socket = "/run/meshnode/admin.sock"#' \
    "$SRC/deploy/meshnode.toml.example" > "$CONF_DIR/meshnode.toml.tmp"
  chown "0:$MGID" "$CONF_DIR/meshnode.toml.tmp"
  chmod 0640 "$CONF_DIR/meshnode.toml.tmp"
  mv "$CONF_DIR/meshnode.toml.tmp" "$CONF_DIR/meshnode.toml"
  say "config → $CONF_DIR/meshnode.toml"
else
  say "config kept: $CONF_DIR/meshnode.toml"
fi

# State and the node key, created as the service user would (0700 / 0600).
mkdir -p "$STATE"
chown "$MUID:$MGID" "$STATE"
chmod 0700 "$STATE"
if [ -z "$R" ]; then
  runuser -u meshnode -- env STATE_DIRECTORY="$STATE" "$NODE" "$PREFIX/dist/supervisor/cli.js" init --config "$CONF_DIR/meshnode.toml" >/dev/null
else
  # No chroot needed: init only writes the state directory, then it is handed to the user.
  MESHNODE_STATE_DIR="$STATE" "$NODE" "$R$PREFIX/dist/supervisor/cli.js" init --config "$CONF_DIR/meshnode.toml" >/dev/null
  chown -R "$MUID:$MGID" "$STATE"
fi
say "node key in $STATE/node.key"

# The unit, pointing at this prefix and this node binary.
mkdir -p "$(dirname "$UNIT")"
sed -e "s#/opt/meshnode#$PREFIX#g" -e "s#^ExecStart=/usr/bin/node #ExecStart=$NODE #" \
  "$SRC/deploy/meshnode.service" > "$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
# The CLI on PATH: a two-line wrapper (not a symlink: the program runs with
# the node this install found, whatever the admin's PATH holds).
mkdir -p "$R/usr/local/bin"
printf '#!/bin/sh\nexec %s %s/dist/supervisor/cli.js "$@"\n' "$NODE" "$PREFIX" > "$BIN.tmp"
chmod 0755 "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
say "cli → $BIN"
# Bash completion, generated by the program from its own command table.
mkdir -p "$(dirname "$COMPLETION")"
"$NODE" "$R$PREFIX/dist/supervisor/cli.js" completion bash > "$COMPLETION.tmp"
chmod 0644 "$COMPLETION.tmp"
mv "$COMPLETION.tmp" "$COMPLETION"

if [ "$LIVE" = 1 ]; then
  systemctl daemon-reload
  systemctl enable meshnode.service
  if [ "$START" = 1 ]; then systemctl restart meshnode.service; say "started"; fi
else
  systemctl --root="$ROOT" enable meshnode.service >/dev/null 2>&1 || say "could not enable the unit offline"
  say "enabled in $ROOT (not started: no running systemd there)"
fi
say "done"
