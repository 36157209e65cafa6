"""Transfers: a verified Wavy export streamed into another system (a SQL table, ...)."""
