"""Triggers of the Wavy provider."""

from __future__ import annotations
