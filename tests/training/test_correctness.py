"""A run's per-example test correctness (`training.correctness`, from `Trainer.test_correct`): the file's round
trip, a damaged file read as none, and the evaluation it comes from agreeing with the report's test top-1."""

from __future__ import annotations

import numpy as np
import torch

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.correctness import CORRECT_FILE, load_correct, save_correct
from tune_hardbatch.training.loop import Trainer


def test_the_file_round_trips_any_number_of_examples(tmp_path):
    correct = np.random.default_rng(0).random(1237) < 0.7  # 1237: not a multiple of 8
    path = save_correct(tmp_path / "t1", correct)
    assert path == tmp_path / "t1" / CORRECT_FILE and path.stat().st_size < 1237 // 8 + 400  # the bits packed
    loaded = load_correct(tmp_path / "t1")
    assert loaded.dtype == bool and np.array_equal(loaded, correct)
    assert [p.name for p in (tmp_path / "t1").iterdir()] == [CORRECT_FILE]  # no temporary file left
    save_correct(tmp_path / "t1", ~correct)  # written again: replaced whole
    assert np.array_equal(load_correct(tmp_path / "t1"), ~correct)
    assert load_correct(tmp_path / "t2") is None  # never written
    assert len(load_correct(save_correct(tmp_path / "t3", np.zeros(0, dtype=bool)).parent)) == 0


def test_a_damaged_file_reads_as_none(tmp_path):
    path = save_correct(tmp_path, np.ones(100, dtype=bool))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # truncated
    assert load_correct(tmp_path) is None
    path.write_bytes(b"not a zip at all")
    assert load_correct(tmp_path) is None
    np.savez_compressed(path.with_suffix(""), bits=np.zeros(3, dtype=np.uint8), n=np.int64(100))  # n and bits disagree
    assert load_correct(tmp_path) is None
    np.savez_compressed(path.with_suffix(""), other=np.zeros(3))  # keys absent
    assert load_correct(tmp_path) is None
    path.unlink()
    path.mkdir()  # not even a file
    assert load_correct(tmp_path) is None


def test_test_correct_is_the_reports_test_top1_per_example():
    """One short epoch on digits, evaluated in batches that do not divide the test set: the per-example
    correctness averages to the report's and `evaluate()`'s test top-1, in the test set's order, and the
    model is back in train() mode."""
    trainer = Trainer(build_config({"device": "cpu", "epochs": 1, "data": {"train_limit": 300},
                                    "eval_batch_size": 97}))
    report = list(trainer.run())[-1]
    correct = trainer.test_correct()
    assert correct.dtype == bool and correct.shape == (len(trainer.data.test_y),)
    assert 100 * correct.mean() == report["test_top1"] == trainer.evaluate()["test_top1"]
    assert 0 < correct.mean() < 1 and trainer.model.training
    with torch.no_grad():  # the order of data.test_y: example by example
        trainer.model.eval()
        first = trainer.model(trainer.augment.eval(trainer.data.test_x[:5])).argmax(1) == trainer.data.test_y[:5]
        trainer.model.train()
    assert np.array_equal(correct[:5], first.numpy())
