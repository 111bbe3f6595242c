#!/usr/bin/env bash
# Makes the two local base images Hoist needs, without pulling anything (no registry is
# reachable from these machines):
#   hoist/busybox:latest  static busybox rootfs (sh, httpd, wget, ...), for apps and tests
#   hoist/builder:latest  the same plus the docker CLI: runs `docker build` against the
#                         mounted engine socket, so a build outlives the worker that started
#                         it (the daemon cancels a build whose API client disconnects).
# Idempotent: an image is rebuilt only when its recorded stamp differs from its inputs.
set -euo pipefail

BUSYBOX=/bin/busybox        # Debian busybox-static
DOCKER_CLI=/usr/bin/docker  # Debian docker.io (dynamically linked: libc + loader only)
RECIPE=1                    # bump when this script changes what goes into the images
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

for f in "$BUSYBOX" "$DOCKER_CLI"; do
  [[ -x $f ]] || { echo "images.sh: $f not found: apt-get install -y busybox-static docker.io" >&2; exit 1; }
done

# Cheap identity of the inputs: recipe version plus size and mtime of the binaries.
stamp_of() { local s="r$RECIPE"; for f in "$@"; do s+="-$(stat -c %s.%Y "$f")"; done; echo "$s"; }

current_stamp() {
  docker image inspect --format '{{ index .Config.Labels "hoist.image.stamp" }}' "$1" 2>/dev/null || true
}

busybox_rootfs() {
  local root=$1
  mkdir -p "$root"/{bin,etc,tmp,www,root,usr/bin,usr/sbin,sbin}
  chmod 1777 "$root/tmp"
  cp "$BUSYBOX" "$root/bin/busybox"
  local applet
  for applet in $("$BUSYBOX" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

import_rootfs() {
  local root=$1 ref=$2 stamp=$3
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
    docker import \
      --change 'CMD ["/bin/sh"]' \
      --change "ENV PATH=$PATH_ENV" \
      --change "LABEL hoist.image.stamp=$stamp" \
      - "$ref" >/dev/null
  echo "images.sh: built $ref"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stamp=$(stamp_of "$BUSYBOX")
if [[ $(current_stamp hoist/busybox:latest) != "$stamp" ]]; then
  busybox_rootfs "$work/busybox"
  import_rootfs "$work/busybox" hoist/busybox:latest "$stamp"
fi

stamp=$(stamp_of "$BUSYBOX" "$DOCKER_CLI")
if [[ $(current_stamp hoist/builder:latest) != "$stamp" ]]; then
  root=$work/builder
  busybox_rootfs "$root"
  mkdir -p "$root/usr/bin" "$root/ctx"
  cp "$DOCKER_CLI" "$root/usr/bin/docker"
  # Copy every shared library the CLI links to (libc and the loader today) to the same path.
  for lib in $(ldd "$DOCKER_CLI" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  import_rootfs "$root" hoist/builder:latest "$stamp"
fi
