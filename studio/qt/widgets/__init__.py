"""Reusable widgets of the Studio window."""
