"""One training run (`tune_hardbatch.training.run`): its summary of the reports (through the CLI: tests/test_cli.py)."""

from tune_hardbatch.training.run import summarize


def test_summary_picks_the_best_report_by_validation_when_there_is_one():
    nan = float("nan")
    reports = [{"epoch_equiv": 1.0, "val_top1": 60.0, "test_top1": 70.0},
               {"epoch_equiv": 2.0, "val_top1": 80.0, "test_top1": 65.0},
               {"epoch_equiv": 3.0, "val_top1": 75.0, "test_top1": 72.0}]
    s = summarize(reports, 1.0, False)
    assert (s["best_val_top1"], s["final_val_top1"], s["test_top1_at_best_val"]) == (80.0, 75.0, 65.0)
    assert s["best_epoch_equiv"] == 2.0 and s["best_test_top1"] == 72.0  # best test is recorded, not chosen
    no_val = [{**r, "val_top1": nan} for r in reports]
    s = summarize(no_val, 1.0, False)
    assert s["best_val_top1"] is None and s["best_epoch_equiv"] == 3.0 and s["best_test_top1"] == 72.0
