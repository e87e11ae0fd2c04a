"""A bounded, mergeable latency histogram (log-linear buckets, as HdrHistogram does).

Values are integer nanoseconds.  Below ``2**SUB_BITS`` ns every value has its own
bucket; above, a bucket spans ``2**(bit_length - SUB_BITS)`` ns, so a recorded value is
known to within 1/2**(SUB_BITS-1) of itself (< 0.8 % with 8 bits): about HdrHistogram's
two significant digits.  However long a run, there are at most ~``2**SUB_BITS * 40``
buckets, and two histograms merge by adding counts, so workers' histograms travel to
the parent as small dicts.  Written here rather than taken from PyPI ``hdrhistogram``:
the load client's hot loop only appends raw values to an ``array`` and folds them in
batches, so a per-value Python call would only cost throughput.
"""

from __future__ import annotations

from collections.abc import Iterable

SUB_BITS = 8


def bucket_of(value: int) -> int:
    """The lowest value of ``value``'s bucket (the bucket's key)."""
    shift = value.bit_length() - SUB_BITS
    if shift <= 0:
        return value
    return (value >> shift) << shift


def bucket_width(key: int) -> int:
    shift = key.bit_length() - SUB_BITS
    return 1 << shift if shift > 0 else 1


class Histogram:
    """Counts per bucket; percentiles by nearest rank, reported at the bucket's middle."""

    __slots__ = ("counts", "max_ns", "min_ns", "sum_ns", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum_ns = 0
        self.max_ns = 0
        self.min_ns = 0

    def record_many(self, values: Iterable[int]) -> None:
        counts = self.counts
        get = counts.get
        n = 0
        total = 0
        high = self.max_ns
        low = self.min_ns if self.total else 1 << 62
        for value in values:
            value = max(value, 0)
            shift = value.bit_length() - SUB_BITS
            key = (value >> shift) << shift if shift > 0 else value
            counts[key] = get(key, 0) + 1
            n += 1
            total += value
            if value > high:
                high = value
            if value < low:
                low = value
        if n:
            self.total += n
            self.sum_ns += total
            self.max_ns = high
            self.min_ns = low

    def record(self, value: int) -> None:
        self.record_many((value,))

    def merge(self, other: Histogram) -> Histogram:
        if not other.total:
            return self
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.min_ns = min(self.min_ns, other.min_ns) if self.total else other.min_ns
        self.total += other.total
        self.sum_ns += other.sum_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        return self

    def percentile(self, q: float) -> int:
        """The q-th percentile (0..100) in ns: nearest rank, at its bucket's middle."""
        if not self.total:
            return 0
        if q >= 100:
            return self.max_ns
        rank = max(1, -(-self.total * q // 100))  # ceil, at least the first value
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(key + bucket_width(key) // 2, self.max_ns)
        return self.max_ns

    def mean(self) -> float:
        return self.sum_ns / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "counts": self.counts,
            "total": self.total,
            "sum_ns": self.sum_ns,
            "max_ns": self.max_ns,
            "min_ns": self.min_ns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Histogram:
        hist = cls()
        counts = data["counts"]
        assert isinstance(counts, dict)
        hist.counts = {int(k): int(v) for k, v in counts.items()}
        for name in ("total", "sum_ns", "max_ns", "min_ns"):
            value = data[name]
            assert isinstance(value, int)
            setattr(hist, name, value)
        return hist

    def __len__(self) -> int:
        return self.total
