"""Addons every master loads: intercept (`-i`), save (`-w`), readfile (`-r`) and replay."""
