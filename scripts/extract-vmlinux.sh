#!/usr/bin/env bash
# Usage: extract-vmlinux.sh BZIMAGE OUT
# Writes the uncompressed ELF kernel inside an x86 bzImage (Firecracker boots only
# that form). The method of the kernel's own scripts/extract-vmlinux: find each
# compression format's magic bytes in the image, decompress from there, and keep the
# first result that is an ELF file.
set -euo pipefail
img=$1
out=$2
tmp="$out.part"
trap 'rm -f "$tmp"' EXIT

# try MAGIC-AS-PCRE DECOMPRESSOR...
try() {
  local magic=$1
  shift
  command -v "$1" >/dev/null || return 1
  local pos
  for pos in $(LC_ALL=C grep -aboP "$magic" "$img" | cut -d: -f1); do
    # The compressed kernel is followed by other data: decompressors complain; ignore.
    tail -c "+$((pos + 1))" "$img" | "$@" >"$tmp" 2>/dev/null || true
    if [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
      mv "$tmp" "$out"
      return 0
    fi
  done
  return 1
}

try '\xfd\x37\x7a\x58\x5a\x00' xz -dc --single-stream ||
  try '\x28\xb5\x2f\xfd' zstd -dc ||
  try '\x1f\x8b\x08' gzip -dc ||
  try '\x02\x21\x4c\x18' lz4 -dc ||
  try '\x5d\x00\x00\x00' xz -dc --format=lzma ||
  try '\x42\x5a\x68' bzip2 -dc || {
  echo "extract-vmlinux: no compressed ELF kernel found in $img (tools tried: xz, zstd, gzip, lz4, bzip2)" >&2
  exit 1
}
