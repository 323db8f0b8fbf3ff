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
