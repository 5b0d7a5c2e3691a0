"""The Qt desktop front end.

This package is the only place that imports PySide6.  It never imports the heavy model
libraries: it sees PIL images, numpy arrays and the plain-Python core, and all heavy work
runs on the engine's worker thread (see :mod:`studio.qt.bridge`).
"""
