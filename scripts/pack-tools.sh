#!/usr/bin/env bash
# Packs the conic .NET tool for every platform libtorch's CPU packages serve (linux-x64, win-x64, win-arm64,
# osx-arm64) into OUT (default artifacts/packages), checks each package by its content (that platform's libtorch,
# TorchSharp and Skia native libraries present, no other platform's, under nuget.org's 250 MB), then installs the
# package of this machine's platform into a temporary folder and runs it. The other platforms' packages are packed
# and checked, not run.
#   scripts/pack-tools.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
out=${1:-artifacts/packages}
command -v unzip >/dev/null || install_package unzip || { echo "error: unzip is needed to check the packages" >&2; exit 1; }
mkdir -p "$out"
dotnet pack src/Conic.Cli -c Release -p:ConicToolPlatforms=all -o "$out" >&2
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)

# The native libraries each platform's package must hold; any native library of another platform is an error.
declare -A needs=(
  [linux-x64]="libtorch_cpu.so libc10.so libLibTorchSharp.so libSkiaSharp.so"
  [win-x64]="torch_cpu.dll c10.dll LibTorchSharp.dll libSkiaSharp.dll"
  [win-arm64]="torch_cpu.dll c10.dll LibTorchSharp.dll libSkiaSharp.dll"
  [osx-arm64]="libtorch_cpu.dylib libc10.dylib libLibTorchSharp.dylib libSkiaSharp.dylib"
)
declare -A foreign=([linux-x64]='\.dylib$|torch_cpu\.dll$' [win-x64]='\.so(\.[0-9]+)*$|\.dylib$' [win-arm64]='\.so(\.[0-9]+)*$|\.dylib$' [osx-arm64]='\.so(\.[0-9]+)*$|torch_cpu\.dll$')
limit=$((250 * 1024 * 1024))
failed=0
printf '| package | file | unpacked | native libraries checked |\n|---|---|---|---|\n'
for rid in linux-x64 win-x64 win-arm64 osx-arm64; do
  package="$out/Conic.Tool.$rid.$version.nupkg"
  files=$(unzip -Z1 "$package")
  size=$(stat -c %s "$package")
  unpacked=$(unzip -l "$package" | tail -n 1 | awk '{print $1}')
  for library in ${needs[$rid]}; do
    grep -qx "tools/net10.0/$rid/$library" <<< "$files" || { echo "error: $package: $library missing" >&2; failed=1; }
  done
  if strays=$(grep -E "${foreign[$rid]}" <<< "$files"); then echo "error: $package: another platform's native libraries: $strays" >&2; failed=1; fi
  (( size < limit )) || { echo "error: $package: $((size / 1048576)) MB, over nuget.org's 250 MB" >&2; failed=1; }
  printf '| Conic.Tool.%s | %d MiB | %d MB | %s |\n' "$rid" $((size / 1048576)) $((unpacked / 1000000)) "${needs[$rid]}"
done
grep -q 'RuntimeIdentifierPackage RuntimeIdentifier="osx-arm64"' <(unzip -p "$out/Conic.Tool.$version.nupkg" tools/any/any/DotnetToolSettings.xml) ||
  { echo "error: the pointer package Conic.Tool does not name every platform's package" >&2; failed=1; }
(( failed == 0 )) || exit 1

# This machine's platform: installed as a user would, then run.
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
dotnet tool install --tool-path "$tools" --add-source "$out" --version "$version" Conic.Tool >&2
"$tools/conic" --version >&2
echo "installed and ran Conic.Tool $version on $(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1); the other packages are packed and checked only" >&2
