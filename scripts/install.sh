# Sourced by the scripts: installs a Debian package as root or with sudo; false where neither is possible.
install_package() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || return 1
    sudo=sudo
  fi
  command -v apt-get >/dev/null || return 1
  $sudo apt-get install -y "$@" >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "$@" >/dev/null; }
}

# Open MPI, for data-parallel training over processes (--processes N, mpirun ... --distributed).
install_open_mpi() {
  command -v mpirun >/dev/null && [[ -e /usr/lib/x86_64-linux-gnu/libmpi.so.40 || -e /usr/lib/aarch64-linux-gnu/libmpi.so.40 ]] && return 0
  echo "installing Debian's openmpi-bin and libopenmpi-dev (data-parallel training over processes)" >&2
  install_package openmpi-bin libopenmpi-dev
}

# What the tests use beside Open MPI, installed in CI (where a test skipped for a missing tool is a failure): tcmalloc
# (the allocator ./conic preloads), Chromium (the HTML report in a browser), PyTorch (exports loaded by torchvision).
install_test_tools() {
  local missing=()
  [[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 || -e /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 ]] || missing+=(libtcmalloc-minimal4)
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  /usr/bin/python3 -c "import torch, torchvision" >/dev/null 2>&1 || missing+=(python3-torch python3-torchvision python3-pil libopenblas0-pthread)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "installing ${missing[*]} (tools the tests use)" >&2
  install_package "${missing[@]}"
}
