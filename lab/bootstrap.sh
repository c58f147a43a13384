# Sourced by start.sh and tests/run: make .venv and install the pinned requirements,
# again only when requirements.txt changed since the last install.
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "The lab needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..."
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing the pinned requirements into .venv (first run takes a minute or two) ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # constraints.txt pins every transitive dependency too: the same versions everywhere
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt \
    -c constraints.txt
  echo "$want" > "$stamp"
fi
# acd and lab importable from anywhere (notebook kernels, services), like an editable
# install: a .pth file that puts this folder on the venv's sys.path.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/redis-acd-lab.pth"
# JupyterLab defaults for a workshop: no news or update pop-ups (and no calls out for them).
mkdir -p .venv/share/jupyter/lab/settings
cp lab/jupyter/overrides.json .venv/share/jupyter/lab/settings/overrides.json
