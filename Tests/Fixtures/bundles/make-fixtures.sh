#!/usr/bin/env bash
# Regenerates the fixture bundles under Tests/Fixtures/bundles/ and the bad-input corpus under
# Tests/Fixtures/bad-bundles/ from the sources in Tests/Fixtures/bundles/src/.
#
# Payloads are real ELF files: demo-fix.o is built by gcc (a relocatable x86-64 object, ET_REL), and
# livepatch_sample.ko is a real livepatch module built against the installed Debian kernel headers
# (apt: linux-headers-amd64), stripped of debug info to stay small. The results are committed, so tests
# do not need a compiler or kernel headers; rerun this script only to change the fixtures, then review
# the diff (checksums in patch.yaml change with the compiler version).
#
# patch.yaml files are written here with sha256sum, independently of suture's BundleWriter, in the same
# layout the writer emits (libyaml's block style), so the tests can check that the writer and this script
# produce byte-identical bundles (same digest).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/src"
bad="$here/../bad-bundles"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

gcc -c -O2 -fno-asynchronous-unwind-tables -fno-ident -o "$work/demo-fix.o" "$src/demo-fix.c"

kdir="${KDIR:-$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -1)}"
if [ -z "$kdir" ]; then echo "no kernel headers (apt-get install linux-headers-amd64)" >&2; exit 1; fi
# A fixed build directory: the build path ends up in the debug info, which feeds the module's build-id.
kwork=/tmp/suture-fixture-livepatch-sample
rm -rf "$kwork"; mkdir -p "$kwork"
cp "$src/livepatch_sample.c" "$kwork/"
echo 'obj-m := livepatch_sample.o' >"$kwork/Makefile"
make -s -C "$kdir" M="$kwork" modules >/dev/null 2>&1
strip --strip-debug -o "$work/livepatch_sample.ko" "$kwork/livepatch_sample.ko"
rm -rf "$kwork"
kver="$(basename "$kdir" | sed 's/^linux-headers-//')"

sum() { sha256sum "$1" | cut -d' ' -f1; }

# --- good bundles --------------------------------------------------------------------------------------
u="$here/user-demo"
rm -rf "$u"; mkdir -p "$u/patches"
cp "$work/demo-fix.o" "$u/demo-fix.o"
cp "$src/demo-fix.patch" "$u/patches/demo-fix.patch"
cat >"$u/patch.yaml" <<YAML
format_version: 1
name: "CVE-2024-0001"
version: "1"
release: "1"
uuid: "0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e"
kind: "user"
description: "Reject over-long requests in parse_request"
target:
  package: "suture-demo"
  version: "1.0-1"
  arch: "x86_64"
entities:
- target_path: "/usr/sbin/suture-demo"
  target_build_id: "3f2a9c1d8e7b6a5f4e3d2c1b0a99887766554433"
  payload: "demo-fix.o"
  payload_sha256: "$(sum "$u/demo-fix.o")"
  functions:
  - symbol: "parse_request"
    offset: 4400
    size: 96
    expected_bytes: "f30f1efa55"
    replacement: "parse_request_patched"
  imports: []
patches:
- file: "patches/demo-fix.patch"
  sha256: "$(sum "$u/patches/demo-fix.patch")"
YAML

k="$here/kernel-livepatch-sample"
rm -rf "$k"; mkdir -p "$k"
cp "$work/livepatch_sample.ko" "$k/livepatch_sample.ko"
cp "$src/livepatch-sample.patch" "$k/livepatch-sample.patch"
cat >"$k/patch.yaml" <<YAML
format_version: 1
name: "KLP-cmdline"
version: "1"
release: "1"
uuid: "9b8e7d6c-5a4b-4c3d-8e2f-1a0b9c8d7e6f"
kind: "kernel"
description: "Sample livepatch replacing cmdline_proc_show"
target:
  package: "kernel"
  version: "$kver"
  arch: "x86_64"
entities:
- target_path: "vmlinux"
  target_build_id: ""
  payload: "livepatch_sample.ko"
  payload_sha256: "$(sum "$k/livepatch_sample.ko")"
  module_name: "livepatch_sample"
  replace: true
patches:
- file: "livepatch-sample.patch"
  sha256: "$(sum "$k/livepatch-sample.patch")"
YAML

# The example kernel bundle that examples/manifests/kernel.yaml refers to is the same bundle.
ex="$here/../../../examples/bundles/livepatch-sample"
rm -rf "$ex"; mkdir -p "$(dirname "$ex")"; cp -r "$k" "$ex"

# --- bad-input corpus: each case is the user-demo bundle with one defect --------------------------------
rm -rf "$bad"; mkdir -p "$bad"
mk() { # mk CASE SED-EXPRESSION: copy user-demo to CASE and edit its patch.yaml
  local d="$bad/$1"; cp -r "$u" "$d"
  if [ -n "$2" ]; then sed -i -e "$2" "$d/patch.yaml"; fi
}
mk missing-patch-yaml ''; rm "$bad/missing-patch-yaml/patch.yaml"
mk bad-uuid 's/^uuid: .*/uuid: "0D3C6A5E-not-a-uuid"/'
mk missing-payload ''; rm "$bad/missing-payload/demo-fix.o"
mk payload-checksum-mismatch ''; printf '\0' >>"$bad/payload-checksum-mismatch/demo-fix.o"
mk patch-checksum-mismatch ''; echo '+/* tampered */' >>"$bad/patch-checksum-mismatch/patches/demo-fix.patch"
mk path-escape 's|payload: "demo-fix.o"|payload: "../user-demo/demo-fix.o"|'
mk absolute-payload 's|payload: "demo-fix.o"|payload: "/etc/passwd"|'
mk symlink-payload ''; ln -sf ../../bundles/user-demo/demo-fix.o "$bad/symlink-payload/demo-fix.o"
mk unknown-key 's/^  payload_sha256:/  payload_sha265:/'
mk wrong-type 's/^version: "1"/version: 1.10/'
mk duplicate-key 's/^release: "1"/release: "1"\nname: "CVE-2024-0002"/'
mk format-too-new 's/^format_version: 1/format_version: 2/'
mk empty-entities '/^entities:/,/^patches:/c\entities: []\npatches:'
mk bad-kind 's/^kind: "user"/kind: "firmware"/'
mk yaml-syntax 's/^description: "Reject/description: "Reject: {/; s/parse_request"$/parse_request/'
mk relative-user-target 's|target_path: "/usr/sbin/suture-demo"|target_path: "suture-demo"|'
mkk() { # mkk CASE SED-EXPRESSION: the same from the kernel bundle
  local d="$bad/$1"; cp -r "$k" "$d"; sed -i -e "$2" "$d/patch.yaml"
}
mkk bool-yes 's/^  replace: true/  replace: yes/'
mkk kernel-without-module-name '/^  module_name:/d'
mkk kernel-entity-with-functions 's/^  replace: true/  replace: true\n  functions: []/'
# The first line of each case's expected error; {dir} stands for the bundle directory as given.
exp() { printf '%s\n' "$2" >"$bad/$1/expected-error"; }
exp absolute-payload "{dir}/patch.yaml:15:12: error: payload path '/etc/passwd' is absolute; payload paths are relative to the bundle directory"
exp bad-kind "{dir}/patch.yaml:6:7: error: 'kind' must be 'user' or 'kernel', found 'firmware'"
exp bad-uuid "{dir}/patch.yaml:5:7: error: 'uuid' must be an RFC 4122 UUID in lower case (8-4-4-4-12 hex digits), found '0D3C6A5E-not-a-uuid'"
exp bool-yes "{dir}/patch.yaml:18:12: error: 'entities[0].replace' must be true or false, found yes (YAML 1.1 spelling; write true or false)"
exp duplicate-key "{dir}/patch.yaml:5:1: error: duplicate key 'name' in mapping"
exp empty-entities "{dir}/patch.yaml:12:11: error: 'entities' must list at least one patched target"
exp format-too-new "{dir}/patch.yaml:1:17: error: format_version 2 is newer than this suture supports (1); upgrade suture"
exp kernel-without-module-name "{dir}/patch.yaml:13:3: error: 'entities[0]' of a kernel patch needs 'module_name' (the /sys/kernel/livepatch/<name> directory)"
exp kernel-entity-with-functions "{dir}/patch.yaml:19:3: error: 'functions' is only valid in a user patch entity"
exp missing-patch-yaml "error: bundle {dir} has no patch.yaml"
exp missing-payload "{dir}/patch.yaml:15:12: error: payload 'demo-fix.o' does not exist in bundle {dir}"
exp patch-checksum-mismatch "{dir}/patch.yaml:26:11: error: checksum mismatch: source patch 'patches/demo-fix.patch' has sha256 $(sum "$bad/patch-checksum-mismatch/patches/demo-fix.patch"), patch.yaml says $(sum "$u/patches/demo-fix.patch") (the file was modified or corrupted)"
exp path-escape "{dir}/patch.yaml:15:12: error: payload path '../user-demo/demo-fix.o' escapes the bundle directory ('..')"
exp payload-checksum-mismatch "{dir}/patch.yaml:16:19: error: checksum mismatch: payload 'demo-fix.o' has sha256 $(sum "$bad/payload-checksum-mismatch/demo-fix.o"), patch.yaml says $(sum "$u/demo-fix.o") (the file was modified or corrupted)"
exp relative-user-target "{dir}/patch.yaml:13:16: error: 'entities[0].target_path' of a user patch must be an absolute ELF path, found 'suture-demo'"
exp symlink-payload "error: bundle {dir}: demo-fix.o: is a symlink; bundles may only contain regular files and directories"
exp unknown-key "{dir}/patch.yaml:16:3: error: unknown key 'payload_sha265' in entities[0]; did you mean 'payload_sha256'?"
exp wrong-type "{dir}/patch.yaml:3:10: error: 'version' must be a string, found a number 1.10; quote it: \"1.10\""
exp yaml-syntax "{dir}/patch.yaml:9:13: error: invalid YAML: did not find expected key (while parsing a block mapping at line 1, column 1)"
echo "fixtures written to $here and $bad"
