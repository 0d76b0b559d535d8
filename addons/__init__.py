"""Bundled helper addons. Each module also loads on its own: `-s addons/NAME.py`."""
