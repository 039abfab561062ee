"""`plots`: every search plot writes a PNG; row labels never overlap each other nor leave the figure."""

import math

import pytest

from tune_hardbatch.output import plots

PNG = b"\x89PNG"


def arms(n, long=True):
    out = []
    for i in range(n):
        name = "plain" if i == 0 else (f"delta=0.{i}+trim-linear+splits=A-C-O+p_end=0.{i}5+lr=0.0{i}3" if long
                                       else f"delta=0.{i}")
        out.append({"arm": name, "family": "x", "is_baseline": i == 0, "n": 3 if i % 4 else 1,
                    "test_top1": {"mean": 90.0 + (i % 5) / 2, "ci95": 0.8 if i % 4 else float("nan")}})
    return out


IMPORTANCES = {"evaluator": "fANOVA", "metric": "val_top1", "n_trials": 20,
               "values": {f"dimension.number_{i}_with_a_rather_long_dotted_name": 0.5 / (i + 1) for i in range(8)},
               "conditional": {"trim.p_end": {"n": 9, "value": 0.3, "among": "trials with trim.schedule != none"},
                               "stepwise.lr_multipliers": {"n": 5, "value": 0.9,
                                                           "among": "trials with stepwise.fractions set"}},
               "warning": "importances from 20 finished trials of 10 dimensions: indicative only"}


def extents(fig, texts):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if not hasattr(t, "get_text") or t.get_text()]


def assert_stacked_inside(fig, boxes):
    """Boxes one above the other without overlapping, each inside the figure."""
    assert boxes
    for b in boxes:
        assert b.x0 >= 0 and b.y0 >= 0 and b.x1 <= fig.bbox.x1 and b.y1 <= fig.bbox.y1, (b, fig.bbox)
    ordered = sorted(boxes, key=lambda b: b.y0)
    for low, high in zip(ordered, ordered[1:]):
        assert low.y1 <= high.y0, (low, high)


def test_shorten_ends_long_labels_with_an_ellipsis():
    assert plots.shorten("short") == "short"
    long = plots.shorten("x" * 100)
    assert len(long) == plots.LABEL_CHARS and long.endswith("\u2026")


@pytest.mark.parametrize("n", [4, 20])
def test_confirmed_arms_labels_never_overlap_and_stay_inside(n):
    fig = plots._confirmed_arms_figure(arms(n), metric="test top-1 %")
    left, right = fig.axes
    labels = left.get_yticklabels()
    assert [t.get_text().endswith(("(3 seeds)", "(1 seed)")) for t in labels] == [True] * n
    assert all(len(t.get_text()) <= plots.LABEL_CHARS + len("  (3 seeds)") for t in labels)
    assert labels[0].get_fontweight() == "bold"  # the baseline, first row at the top
    assert_stacked_inside(fig, extents(fig, labels))
    assert_stacked_inside(fig, extents(fig, right.get_yticklabels()))
    assert [line.get_xdata()[0] for line in left.get_lines() if line.get_linestyle() == "--"] == [90.0]
    height = fig.get_figheight()
    plots.plt.close(fig)
    if n == 20:
        small = plots._confirmed_arms_figure(arms(4))
        assert small.get_figheight() < height  # the figure grows with its rows
        plots.plt.close(small)


def test_importance_labels_with_conditions_never_overlap_and_stay_inside():
    fig = plots._importances_figure(IMPORTANCES)
    (ax,) = fig.axes
    labels = ax.get_yticklabels()
    assert len(labels) == 10 and "(among trials with trim.schedule != none, n=9)" in labels[8].get_text()
    assert_stacked_inside(fig, extents(fig, labels))
    colours = {tuple(p.get_facecolor()) for p in ax.patches}
    assert len(colours) == 2  # conditional bars in another colour
    assert "indicative only" in ax.get_title()
    plots.plt.close(fig)


def test_legends_sit_outside_the_axes_and_inside_the_figure():
    curves = {f"family {i} " + "with a long label " * (i % 2) * 4: ([1, 2, 3], [50 + i, 60 + i, float("nan")])
              for i in range(12)}
    points = [(i, float("nan") if i % 7 == 0 else 80.0 + i % 5, ("finished", "stopped_early", "diverged")[i % 3])
              for i in range(1, 21)]
    for fig in (plots._best_curves_figure(curves, "val_top1"), plots._best_so_far_figure(points, "val_top1", "max")):
        (ax,) = fig.axes
        legend, axes_box = extents(fig, [ax.get_legend()])[0], ax.get_window_extent()
        assert legend.x0 >= axes_box.x1 and legend.x1 <= fig.bbox.x1 and legend.y0 >= 0
        assert_stacked_inside(fig, extents(fig, ax.get_legend().get_texts()))
        plots.plt.close(fig)


def test_best_so_far_steps_through_the_best_finished_value():
    points = [(1, 70.0, "finished"), (2, 99.0, "stopped_early"), (3, float("nan"), "diverged"),
              (4, 80.0, "finished"), (5, 75.0, "finished")]
    fig = plots._best_so_far_figure(points, "val_top1", "max")
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "best finished so far"]
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5] and list(line.get_ydata()) == [70, 70, 70, 80, 80]
    plots.plt.close(fig)
    fig = plots._best_so_far_figure(points, "val_loss", "min")
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "best finished so far"]
    assert list(line.get_ydata()) == [70, 70, 70, 70, 70]
    plots.plt.close(fig)


def test_each_plot_writes_a_png(tmp_path):
    empty = {"evaluator": "fANOVA", "metric": "val_top1", "n_trials": 2, "values": {}, "conditional": {},
             "warning": "no importances: 2 finished trial(s)"}
    reports = [{"epoch_equiv": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "train_top1": 90.0, "test_top1": 88.0,
                "test_top5": 99.0, "lr": 0.1, "p": 1.0, "val_loss": 1.2 / e if e > 1 else math.nan,
                "val_top1": 87.0} for e in (1, 2, 3)]
    paths = [plots.confirmed_arms(arms(12, long=False), tmp_path / "arms.png", baseline="plain"),
             plots.importances(IMPORTANCES, tmp_path / "imp.png"), plots.importances(empty, tmp_path / "empty.png"),
             plots.best_so_far([(1, 50.0, "finished"), (2, math.nan, "failed")], tmp_path / "bsf.png", "val_top1",
                               "max"),
             plots.best_curves({"plain": ([1, 2], [50, 60])}, tmp_path / "curves.png", "val_top1")]
    plots.learning_curves(reports, tmp_path / "lc.png")
    plots.learning_curves([{k: v for k, v in r.items() if not k.startswith("val")} for r in reports],
                          tmp_path / "lc_old.png")
    for path in paths + [tmp_path / "lc.png", tmp_path / "lc_old.png"]:
        assert path.read_bytes()[:4] == PNG, path


def curve_reports(n, val=True, loss=1.0):
    return [{"epoch_equiv": e, "train_loss": loss / e, "test_loss": 1.1 * loss / e, "train_top1": 10.0 * e,
             "test_top1": 9.0 * e, "test_top5": 50.0 + e, "lr": 0.1 / e, "p": 1 - 0.1 * e,
             "converged": int(e > 2), "convergence_epoch": 3, **({"val_loss": 1.2 / e, "val_top1": 8.0 * e} if val
                                                                else {})} for e in range(1, n + 1)]


def test_the_learning_curves_picture_does_not_depend_on_what_the_process_drew_before(tmp_path):
    """The figure is built once per process and reused: a trial's picture is the one a fresh figure draws."""
    diverged = [{**r, "train_loss": math.nan, "test_loss": math.nan} for r in curve_reports(2, val=False)]
    cases = {"full": curve_reports(8), "no_val": curve_reports(5, val=False, loss=40.0), "diverged": diverged,
             "one": curve_reports(1)}
    fresh = {}
    for name, reports in cases.items():
        plots._CURVES.clear()
        plots.learning_curves(reports, tmp_path / f"{name}.fresh.png", title=name)
        fresh[name] = (tmp_path / f"{name}.fresh.png").read_bytes()
    plots._CURVES.clear()
    for name, reports in list(cases.items()) + list(reversed(cases.items())):
        plots.learning_curves(reports, tmp_path / "again.png", title=name)
        assert (tmp_path / "again.png").read_bytes() == fresh[name], name
    fig = plots._CURVES["figure"]
    assert [t.get_text() for t in fig.axes["acc"].get_legend().get_texts()] == [
        "train top-1", "test top-1", "validation top-1", "test top-5", "convergence"]


def test_best_curves_put_compute_on_the_x_axis_and_best_so_far_the_order_started():
    fig = plots._best_curves_figure({"plain": ([0.9, 1.9], [50.0, 60.0])}, "val_top1")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("compute (compute_equiv") and ax.get_legend().get_title().get_text() == "arm"
    assert list(ax.get_lines()[0].get_xdata()) == [0.9, 1.9]
    plots.plt.close(fig)
    fig = plots._best_so_far_figure([(1, 50.0, "finished")], "val_top1", "max")
    assert fig.axes[0].get_xlabel() == "trial (in the order started)"
    plots.plt.close(fig)


def test_confirmation_looks_draw_one_panel_per_primary_comparison_within_the_axes():
    from tune_hardbatch.verdict.sequential import Comparison, Design, trace

    design = Design((1, 2, 3, 4, 5, 6), (2, 4, 6), 0.05, margin=1.0)
    values = {"plain": {s: 60.0 + (s % 3) * 0.4 for s in range(1, 7)},
              "sb": {s: 50.0 + (s % 2) * 0.3 for s in range(1, 7)},  # decided early: it hurts by ten points
              "trim": {s: 60.2 + (s % 3) * 0.5 for s in range(1, 7)}}
    comps = [Comparison("sb vs plain", "sb", "plain"), Comparison("trim vs plain", "trim", "plain")]
    looks = trace(design, values, comps, 3)
    sb = [(look["look"], look["comparisons"]["sb vs plain"]["decision"]) for look in looks
          if "sb vs plain" in look["comparisons"]]
    assert sb[-1][1] == "hurts" and len(sb) == sb[-1][0]  # shown until decided, not after
    assert [look["seeds"] for look in looks] == [2, 4, 6]
    fig = plots._confirmation_looks_figure({"trace": looks, "margin": 1.0})
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["sb vs plain", "trim vs plain"]
    low, high = panels[0].get_ylim()
    assert low < -10 < 10 < high  # the decided difference is inside the axes
