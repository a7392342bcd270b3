#!/usr/bin/env bash
# Builds the image (the repository's Dockerfile) with podman, on a machine that reaches no container
# registry: the base images the Dockerfile names in its FROM lines are made here first, as faithful
# stand-ins, under exactly those names, from Debian's archive and npm packages:
#   build stage   (node:<N>-<suite>-slim): a Debian <suite> minbase rootfs (debootstrap) with Node
#                 and npm in /usr/local, like the official image; plus, in this stand-in only, the
#                 host's CA bundle as NODE_EXTRA_CA_CERTS (a TLS-inspecting network must be trusted
#                 by `npm ci`; the Dockerfile itself knows nothing of it);
#   runtime stage (gcr.io/distroless/nodejs<N>-debian<V>:nonroot): the same rootfs without any shell,
#                 Node at /nodejs/bin/node, user and group nonroot (65532),
#                 ENTRYPOINT ["/nodejs/bin/node"], USER 65532, like distroless.
# Node is the package-lock's `node` dev dependency version (the binary test/image.test.ts runs), npm
# is the latest npm@11 (Node 24's). A machine that can pull the real bases needs none of this: it
# runs `docker build` or `podman build` as below (README, "Get the image").
#
# A base is made only when missing (one present under that name, a pulled real one say, is used as
# it is), or when it is a stand-in of another Node than the locked one. The rootfs, Node and npm are
# kept in the cache directory ($SUPERFASTTT_IMAGE_CACHE, else /var/cache/superfasttt-image as root,
# else $XDG_CACHE_HOME/superfasttt-image), and podman caches the Dockerfile's layers: a second run
# takes seconds.
#
# Usage: test/image/build.sh [--rebuild-bases]
#   --rebuild-bases  make the stand-ins again from a fresh debootstrap and npm@11 (Node stays the
#                    locked version)
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), SUPERFASTTT_BUILD_CA_CERTS
# (the CA bundle for the build stand-in, default /etc/ssl/certs/ca-certificates.crt; empty: none).
#
# podman runs with `--runtime runc` (crun fails here: "cgroups in hybrid mode not supported") and
# needs /etc/containers/containers.conf with `default_ulimits = []` (else "setrlimit
# RLIMIT_NOFILE: Operation not permitted"), written below when missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@" # also when started as `sh test/image/build.sh`
set -euo pipefail

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
pm() { podman --runtime runc "$@"; }
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

rebuild=false
for arg in "$@"; do
  case $arg in
    --rebuild-bases) rebuild=true ;;
    -h | --help) sed -n '2,/^\[ -n /{/^\[ -n /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

started=$(now_ms)
root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"
is_root=false
[ "$(id -u)" = 0 ] && is_root=true

# --- podman ---------------------------------------------------------------------------------------
command -v podman >/dev/null || die "podman is not installed (as root: apt-get install -y podman buildah runc debootstrap)"
for tool in node npm; do
  command -v "$tool" >/dev/null || die "$tool is needed (to read package.json and package-lock.json, and to fetch Node and npm)"
done
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
  if $is_root; then
    mkdir -p /etc/containers
    printf '[containers]\ndefault_ulimits = []\n' >"$conf"
    say "wrote $conf: [containers] default_ulimits = []"
  else
    die "$conf is missing; as root: printf '[containers]\\ndefault_ulimits = []\\n' > $conf"
  fi
elif ! grep -q '^[[:space:]]*default_ulimits' "$conf"; then
  say "warning: $conf sets no default_ulimits; if podman fails with 'setrlimit RLIMIT_NOFILE', add 'default_ulimits = []' to its [containers] table"
fi
info_err=$(pm info 2>&1 >/dev/null) || die "podman --runtime runc is not usable: $info_err"

# --- the bases, as the Dockerfile names them ------------------------------------------------------
# Each FROM line: its image and its stage name. The build stage is the one named `build`, the
# runtime stage the last one.
froms=$(awk 'toupper($1) == "FROM" {
  image = ""; stage = "-"
  for (i = 2; i <= NF; i++) {
    if ($i ~ /^--/) continue
    if (image == "") { image = $i; continue }
    if (toupper($i) == "AS") { stage = $(i + 1); break }
  }
  print image, stage
}' Dockerfile)
build_base=$(printf '%s\n' "$froms" | awk '$2 == "build" { print $1; exit }')
runtime_base=$(printf '%s\n' "$froms" | awk 'END { print $1 }')
if [ -z "$build_base" ] || [ -z "$runtime_base" ] || [ "$build_base" = "$runtime_base" ]; then
  die "Dockerfile: expected a stage 'AS build' and a last (runtime) stage; FROM lines: $froms"
fi
[[ $build_base =~ ^node:([0-9]+)-([a-z]+)-slim$ ]] || die "Dockerfile: build base $build_base is not node:<major>-<suite>-slim"
node_major=${BASH_REMATCH[1]}
suite=${BASH_REMATCH[2]}
[[ $runtime_base =~ ^gcr\.io/distroless/nodejs([0-9]+)-debian([0-9]+):nonroot$ ]] ||
  die "Dockerfile: runtime base $runtime_base is not gcr.io/distroless/nodejs<major>-debian<version>:nonroot"
[ "${BASH_REMATCH[1]}" = "$node_major" ] || die "Dockerfile: Node $node_major in $build_base but ${BASH_REMATCH[1]} in $runtime_base"
case ${BASH_REMATCH[2]} in
  12) runtime_suite=bookworm ;;
  13) runtime_suite=trixie ;;
  14) runtime_suite=forky ;;
  *) die "Dockerfile: unknown Debian version in $runtime_base" ;;
esac
[ "$runtime_suite" = "$suite" ] || die "Dockerfile: the build stage is on $suite but the runtime stage on $runtime_suite (the argon2 binding must come from the same libc)"

# podman's storage keeps fully qualified names; `FROM node:…` resolves to docker.io/library/node.
qualify() {
  case ${1%%/*} in
    "$1") printf 'docker.io/library/%s\n' "$1" ;;
    *.* | *:* | localhost) printf '%s\n' "$1" ;;
    *) printf 'docker.io/%s\n' "$1" ;;
  esac
}
build_name=$(qualify "$build_base")
runtime_name=$(qualify "$runtime_base")

node_version=$(node -p "require('./package-lock.json').packages['node_modules/node']?.version ?? ''")
[ -n "$node_version" ] || die "package-lock.json has no node_modules/node (the dev dependency node@$node_major)"
[ "${node_version%%.*}" = "$node_major" ] || die "the dev dependency node@$node_version is not Node $node_major, the Dockerfile's"
npm_major=11 # the npm of Node 24

case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) die "no Node binary package for $(uname -m)" ;;
esac

if $is_root; then default_cache=/var/cache/superfasttt-image; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/superfasttt-image; fi
cache=${SUPERFASTTT_IMAGE_CACHE:-$default_cache}
ca_bundle=${SUPERFASTTT_BUILD_CA_CERTS-/etc/ssl/certs/ca-certificates.crt}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

work=''
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT

make_bases() {
  $is_root || die "making the stand-in base images needs root (debootstrap, and podman's storage as root); run: sudo $0"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (as root: apt-get install -y debootstrap)"
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/work.XXXXXX")

  # The Debian rootfs, once.
  local rootfs=$cache/rootfs-$suite
  if $rebuild || [ ! -d "$rootfs" ]; then
    say "debootstrap --variant=minbase $suite from $mirror (half a minute here)"
    local t0
    t0=$(now_ms)
    debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/log/"*.log
    rm -rf "$rootfs"
    mv "$work/rootfs" "$rootfs"
    say "rootfs $rootfs in $(secs $(($(now_ms) - t0)))"
  fi

  # Node: the binary of the locked node@ package (node_modules/node/bin/node once its install script
  # ran; else the official binary package node-linux-<arch>).
  local node_bin=$cache/node-v$node_version-linux-$arch
  if [ ! -x "$node_bin" ]; then
    local candidate=node_modules/node/bin/node
    if [ "$(head -c 4 "$candidate" 2>/dev/null | od -An -c | tr -d ' \n')" = '177ELF' ] &&
      [ "$("$candidate" --version 2>/dev/null)" = "v$node_version" ]; then
      cp "$candidate" "$work/node"
    else
      say "npm pack node-linux-$arch@$node_version"
      (cd "$work" && npm pack --silent "node-linux-$arch@$node_version" >/dev/null && tar -xzf node-linux-*.tgz package/bin/node)
      mv "$work/package/bin/node" "$work/node"
    fi
    [ "$("$work/node" --version)" = "v$node_version" ] || die "the Node binary is not v$node_version"
    mv "$work/node" "$node_bin"
  fi

  # npm, as a package tarball.
  local npm_tgz
  npm_tgz=$(find "$cache" -maxdepth 1 -name "npm-$npm_major.*.tgz" | sort -V | tail -n 1)
  if $rebuild || [ -z "$npm_tgz" ]; then
    say "npm pack npm@$npm_major"
    npm_tgz=$cache/$(cd "$work" && npm pack --silent "npm@$npm_major")
    find "$cache" -maxdepth 1 -name "npm-*.tgz" -delete
    mv "$work/${npm_tgz##*/}" "$npm_tgz"
  fi
  local npm_version=${npm_tgz##*/npm-}
  npm_version=${npm_version%.tgz}

  # Build stand-in: the rootfs, Node and npm in /usr/local, user node (1000) as in the official image.
  local stage=$work/build
  cp -a "$rootfs" "$stage"
  install -m 0755 "$node_bin" "$stage/usr/local/bin/node"
  mkdir -p "$stage/usr/local/lib/node_modules"
  tar -xzf "$npm_tgz" -C "$work"
  mv "$work/package" "$stage/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$stage/etc/passwd"
  echo 'node:x:1000:' >>"$stage/etc/group"
  install -d -m 0755 -o 1000 -g 1000 "$stage/home/node"
  local changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change "ENV NODE_VERSION=$node_version" --change 'CMD ["node"]')
  if [ -n "$ca_bundle" ] && [ -f "$ca_bundle" ]; then
    # This network's TLS inspection: trusted by this stand-in only, never by the Dockerfile.
    install -D -m 0644 "$ca_bundle" "$stage/usr/local/share/stand-in/host-ca-certificates.crt"
    changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/stand-in/host-ca-certificates.crt')
  fi
  say "importing $build_name (Debian $suite minbase, Node $node_version, npm $npm_version)"
  tar --numeric-owner -C "$stage" -c . |
    pm import "${changes[@]}" --message "stand-in for $build_base made by test/image/build.sh: Debian $suite minbase, Node $node_version, npm $npm_version" - "$build_name" >/dev/null
  rm -rf "$stage"

  # Runtime stand-in: the rootfs without a shell, Node at /nodejs/bin/node, user nonroot (65532).
  stage=$work/runtime
  cp -a "$rootfs" "$stage"
  local shell
  for shell in $(grep '^/' "$stage/etc/shells") /bin/sh /bin/bash /bin/dash /bin/rbash /bin/busybox; do
    rm -f "$stage/usr$shell" "$stage$shell"
  done
  for shell in sh bash dash rbash busybox; do
    if [ -e "$stage/usr/bin/$shell" ] || [ -L "$stage/usr/bin/$shell" ]; then
      die "a shell is left in the runtime stand-in: /usr/bin/$shell"
    fi
  done
  install -D -m 0755 "$node_bin" "$stage/nodejs/bin/node"
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$stage/etc/passwd"
  echo 'nonroot:x:65532:' >>"$stage/etc/group"
  install -d -m 0700 -o 65532 -g 65532 "$stage/home/nonroot"
  say "importing $runtime_name (Debian $suite minbase without a shell, Node $node_version)"
  tar --numeric-owner -C "$stage" -c . |
    pm import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENTRYPOINT ["/nodejs/bin/node"]' --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
      --message "stand-in for $runtime_base made by test/image/build.sh: Debian $suite minbase without a shell, Node $node_version" \
      - "$runtime_name" >/dev/null
  rm -rf "$work"
  work=''
}

# A base is made when missing, or when it is a stand-in of another Node than the locked one; a real
# image (pulled) is left as it is.
stale() {
  pm image exists "$1" || return 0
  local made_by
  made_by=$(pm history --no-trunc --format '{{.Comment}}' "$1" | grep 'made by test/image/build.sh' || true)
  [ -n "$made_by" ] && [[ $made_by != *"Node $node_version"[,]* && $made_by != *"Node $node_version" ]]
}
if $rebuild || stale "$build_name" || stale "$runtime_name"; then
  bases_started=$(now_ms)
  make_bases
  say "stand-in bases made in $(secs $(($(now_ms) - bases_started)))"
else
  say "base images present: $build_name, $runtime_name (--rebuild-bases to make stand-ins again)"
fi

# --- the image ------------------------------------------------------------------------------------
version=$(node -p "require('./package.json').version")
image=superfasttt/bootstrap:$version
build_cmd=(build --pull=never --network host -t "$image" --build-arg "VERSION=$version" .)
say "podman --runtime runc ${build_cmd[*]}"
build_started=$(now_ms)
pm "${build_cmd[@]}" >&2
build_ms=$(($(now_ms) - build_started))

base_size=$(pm image inspect --format '{{.Size}}' "$runtime_name")
image_size=$(pm image inspect --format '{{.Size}}' "$image")
base_layers=$(pm image inspect --format '{{len .RootFS.Layers}}' "$runtime_name")
say "our layers on top of $runtime_base:"
pm history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | head -n "$(($(pm history -q "$image" | wc -l) - $(pm history -q "$runtime_name" | wc -l)))" |
  cut -c 1-110 >&2 || true
printf 'image:          %s\n' "$image"
printf 'build:          %s (podman build), %s (this script)\n' "$(secs "$build_ms")" "$(secs $(($(now_ms) - started)))"
printf 'size:           %s, of which our layers add %s to %s (%s)\n' "$(mib "$image_size")" \
  "$(mib $((image_size - base_size)))" "$runtime_base" "$(mib "$base_size")"
printf 'layers:         %s of the base, %s in all\n' "$base_layers" "$(pm image inspect --format '{{len .RootFS.Layers}}' "$image")"
