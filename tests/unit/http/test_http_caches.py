"""BoundedCache: the bound, emptying, counters; HTTP1Caches groups them."""

import pytest

from evloop.http.caches import BoundedCache, HTTP1Caches


def test_bound_empties_when_full_and_counts_it():
    cache: BoundedCache[int, int] = BoundedCache("t", 3)
    for i in range(7):
        cache.put(i, i)
        assert len(cache) <= 3
    assert cache.entries == {6: 6} and cache.clears == 2
    stats = cache.stats()
    assert (stats.name, stats.size, stats.max_entries, stats.clears) == ("t", 1, 3, 2)


def test_zero_bound_holds_nothing_and_clear_keeps_counters():
    cache: BoundedCache[str, int] = BoundedCache("t", 0)
    cache.put("a", 1)
    assert len(cache) == 0 and cache.clears == 0
    cache = BoundedCache("t", 2)
    cache.put("a", 1)
    cache.misses = 5
    cache.clear()
    assert len(cache) == 0 and cache.misses == 5
    with pytest.raises(ValueError):
        BoundedCache("t", -1)


def test_groups_are_independent_and_disabled_holds_nothing():
    first, second = HTTP1Caches(), HTTP1Caches()
    first.hosts.put("h", True)
    assert "h" not in second.hosts.entries
    assert [s.name for s in first.stats()] == ["heads", "heads_seen", "head_templates", "field_lines", "hosts", "fields", "framed"]
    disabled = HTTP1Caches.disabled()
    for cache in disabled.all():
        cache.put("k", True)
    assert all(len(cache) == 0 for cache in disabled.all())
    first.clear()
    assert len(first.hosts) == 0
