"""Text from outside (a server's answer, a file's bytes) made fit for one line of a message."""

from __future__ import annotations

from airflow_provider_wavy.urls import cut


def one_line(text: str, limit: int) -> str:
    """
    Return ``text`` as one line of at most ``limit`` printable characters, safe to put in a log line.

    Control characters and line breaks become spaces and runs of white space collapse, so the text cannot
    forge log lines; longer text is cut and marked.

    :param text: the raw text.
    :param limit: the most characters returned.
    """
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return cut(flat, limit)


__all__ = ["one_line"]
