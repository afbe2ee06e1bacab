"""``tune_gc_for_serving``: the serving process's GC settings (see ``evloop.workers.worker``)."""

from __future__ import annotations

import gc

import pytest

from evloop.workers.worker import GC_YOUNG_THRESHOLD, tune_gc_for_serving


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_it_raises_the_young_threshold_and_freezes_what_exists(restore_gc):
    gc.set_threshold(700, 10, 10)
    tune_gc_for_serving()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0


def test_a_gc_turned_off_by_the_application_stays_off(restore_gc):
    gc.set_threshold(0, 10, 10)
    tune_gc_for_serving()
    assert gc.get_threshold()[0] == 0


def test_a_higher_threshold_of_the_applications_is_kept(restore_gc):
    gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 10, 10)
    tune_gc_for_serving()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD * 2
