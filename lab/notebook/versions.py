"""The packages the notebooks rely on, and the one pairing that must hold (notebook 00)."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("redis", "ipywidgets", "jupyterlab_widgets", "jupyterlab", "plotly", "anywidget")
# ipywidgets and jupyterlab_widgets must come from the same release line: ipywidgets 8.x
# talks to the JupyterLab extension jupyterlab_widgets 3.x. A mismatch shows
# "Error displaying widget: model not found" instead of the widget.
WIDGET_PAIRS = {"8": "3", "7": "1"}


def versions() -> dict[str, str]:
    """Installed versions of the packages the lab's notebooks rely on."""
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def check_widget_versions(found: dict[str, str] | None = None) -> bool:
    """ipywidgets and jupyterlab_widgets must be installed together, from one release."""
    found = found or versions()
    ipw, jlw = found.get("ipywidgets", ""), found.get("jupyterlab_widgets", "")
    if "not installed" in (ipw, jlw):
        print(f"✘ ipywidgets {ipw}, jupyterlab_widgets {jlw}: install both, pinned together: "
              "pip install -r requirements.txt")
        return False
    if WIDGET_PAIRS.get(ipw.split(".")[0]) != jlw.split(".")[0]:
        print(f"✘ ipywidgets {ipw} needs jupyterlab_widgets "
              f"{WIDGET_PAIRS.get(ipw.split('.')[0], '?')}.x, found {jlw}: widgets would show "
              "'Error displaying widget: model not found'. Upgrade both together "
              "(pip install -r requirements.txt), then restart JupyterLab.")
        return False
    print(f"✔ ipywidgets {ipw} and jupyterlab_widgets {jlw} belong together")
    return True
