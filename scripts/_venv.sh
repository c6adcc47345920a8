# Sourced by scripts/test and scripts/demo: create .venv and install the project into it.
#   ensure_venv EXTRA   EXTRA is "test" (with the test tools) or "" (runtime only)
# Reinstalls only when pyproject.toml changed (the install is editable, so code changes need none).

ensure_venv() {
  local extra=$1 py=${PYTHON:-python3} stamp target
  if ! command -v "$py" >/dev/null; then
    echo "error: $py not found; hlr-gateway needs Python >= 3.11" >&2; return 1
  fi
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: $py is Python $("$py" -c 'import platform; print(platform.python_version())'); hlr-gateway needs >= 3.11 (set PYTHON=...)" >&2
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$py" -m venv .venv
  fi
  stamp=$(sha256sum pyproject.toml | cut -c1-16)
  if [ -n "$extra" ]; then
    [ -e ".venv/.installed-$stamp-$extra" ] && return 0
    target=".[$extra]"
  else
    compgen -G ".venv/.installed-$stamp-*" >/dev/null && return 0
    target="."
  fi
  echo "==> installing hlr-gateway ($target) into .venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q -e "$target"
  rm -f .venv/.installed-*
  touch ".venv/.installed-$stamp-${extra:-runtime}"
}
