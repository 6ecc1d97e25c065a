"""Small helpers for the quarterly report script."""


def quarter_of(month: int) -> int:
    """Calendar quarter (1-4) of a month number (1-12)."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    return (month - 1) // 3 + 1


def growth(previous: float, current: float) -> float:
    """Relative growth from previous to current, e.g. 0.25 for +25%."""
    return (current - previous) / previous
