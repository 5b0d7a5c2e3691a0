"""Dialogs: settings and the plugin list."""
