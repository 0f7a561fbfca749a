"""Command-line lists of integers for the benchmark scripts: '0-19' (inclusive) or '0,3,7'."""


def int_list(text: str) -> list:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]
