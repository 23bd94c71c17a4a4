#!/usr/bin/env bash
# Builds bpf/xdp_dns.o, the XDP program of the `xdp` feature, from bpf/xdp_dns.c. The object is
# committed and embedded in the binary (include_bytes), so building gslbd needs no clang; this
# script is for changing the program.
#
#   bpf/build.sh           rebuild bpf/xdp_dns.o
#   bpf/build.sh --check   rebuild into a temporary file and fail when it differs from the
#                          committed object (.ci/test runs this)
#
# Needs clang and llvm-strip (Debian: clang, llvm) and the libbpf headers (libbpf-dev). The build
# is reproducible: paths are made relative (-fdebug-prefix-map) and the DWARF is stripped (the
# BTF that the loader needs for the maps stays), so one compiler version gives the same bytes.
# A different clang may give different bytes: the message says which version built this one.
set -euo pipefail
cd "$(dirname "$0")/.."

src=bpf/xdp_dns.c
obj=bpf/xdp_dns.o
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")

build() {
  clang -O2 -g -target bpf -Wall -Werror \
    -I"/usr/include/$multiarch" -fdebug-prefix-map="$PWD"=. \
    -c "$src" -o "$1"
  llvm-strip -g "$1"
}

case "${1:-}" in
  "")
    build "$obj"
    echo "built $obj ($(clang --version | head -1))"
    ;;
  --check)
    tmp=$(mktemp --suffix=.o)
    trap 'rm -f "$tmp"' EXIT
    build "$tmp"
    if ! cmp -s "$tmp" "$obj"; then
      echo "bpf/build.sh --check: $obj is not what $src builds to with $(clang --version | head -1)." >&2
      echo "Run bpf/build.sh and commit $obj with the source." >&2
      exit 1
    fi
    echo "bpf/build.sh --check: $obj matches $src"
    ;;
  *)
    echo "usage: bpf/build.sh [--check]" >&2
    exit 2
    ;;
esac
