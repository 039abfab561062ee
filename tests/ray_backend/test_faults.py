"""The test crash hook (`ray_backend.faults.CrashHook`): which trials fail, where, and how often."""

import pytest
import torch

from tune_hardbatch.ray_backend.faults import CrashHook


def test_a_fixed_epoch_fails_every_time_without_a_marker():
    hook = CrashHook("epoch=2")
    hook.check(1, "t")  # not there yet
    for _ in range(2):
        with pytest.raises(RuntimeError, match="injected crash at epoch 2"):
            hook.check(2, "t")


def test_a_marker_fails_each_trial_once(tmp_path):
    hook = CrashHook(f"epoch=1,marker={tmp_path}")
    with pytest.raises(RuntimeError):
        hook.check(1, "a")
    hook.check(1, "a")  # the retry goes through
    with pytest.raises(RuntimeError):
        hook.check(1, "b")  # another trial fails once too


def test_prob_draws_a_stable_share_and_epoch_per_trial():
    hook = CrashHook("prob=0.3,seed=7")
    epochs = {t: hook.crash_epoch(t, 10) for t in (f"t{i}" for i in range(400))}
    assert epochs == {t: CrashHook("prob=0.3,seed=7").crash_epoch(t, 10) for t in epochs}  # deterministic
    failing = [e for e in epochs.values() if e is not None]
    assert 0.2 < len(failing) / len(epochs) < 0.4 and set(failing) <= set(range(1, 11))


def test_oom_is_the_real_type_and_min_batch_spares_small_batches():
    hook = CrashHook("epoch=1,kind=oom,min_batch=64")
    hook.check(1, "t", batch_size=32)
    with pytest.raises(torch.OutOfMemoryError):
        hook.check(1, "t", batch_size=64)


@pytest.mark.parametrize("text", ["kind=oom", "epoch=1,kind=segfault"])
def test_a_hook_without_a_place_or_with_an_unknown_kind_is_refused(text):
    with pytest.raises(ValueError, match="TUNE_HARDBATCH_TEST_CRASH"):
        CrashHook(text)
