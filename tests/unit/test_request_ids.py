"""``evloop.request_ids``: ids of 32 hex digits, unique within a process and across forked workers."""

from __future__ import annotations

import os
import re
from itertools import islice

from evloop import request_ids


def test_ids_count_up_behind_one_prefix():
    ids = list(islice(request_ids.made, 300))
    assert all(re.fullmatch(r"[0-9a-f]{32}", made) for made in ids)
    assert len({made[:24] for made in ids}) <= 2  # one prefix (two if a counter ran out on the way)
    counters = [int(made[24:], 16) for made in ids if made[:24] == ids[-1][:24]]
    assert counters == list(range(counters[0], counters[0] + len(counters)))


def test_a_prefix_runs_through_every_counter_then_a_new_prefix_follows():
    # The pools of one prefix, as _prefixed makes them: the first ids count from zero, the last is all f.
    first = list(islice(request_ids._prefixed(None), 257))
    assert [made[24:] for made in first[:3]] == ["00000000", "00000001", "00000002"]
    assert first[256][24:] == "00000100"
    chained = request_ids._new_ids()
    assert next(chained)[24:] == "00000000"


def test_renew_starts_a_new_prefix():
    before = next(request_ids.made)
    request_ids.renew()
    after = next(request_ids.made)
    assert before[:24] != after[:24] and after[24:] == "00000000"


def test_a_forked_child_makes_other_ids_than_its_parent():
    next(request_ids.made)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out at once
        try:
            os.write(write_end, next(request_ids.made).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child = os.read(read_end, 64).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    parent = next(request_ids.made)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:24] != parent[:24]  # without the at-fork renewal both would go on from the same counter
