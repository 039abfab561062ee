"""`tune-hardbatch train` end to end (`main` in this process; the console script in a subprocess), bad inputs
(exit 2, one line), and the import boundary."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from tune_hardbatch.cli import main


def run_cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tune_hardbatch", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_train_writes_the_contract_files(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--set", "epochs=3", "--set", "hard_batch.delta=0.5", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    expected = {"epoch_equiv", "backprops", "samples_forward", "samples_with_grad", "train_loss", "train_top1",
                "test_loss", "test_top1", "test_top5", "lr", "p", "delta", "stage", "convergence_epoch",
                "time_train_s", "time_eval_s", "img_per_s", "epochs_to_target", "converged"}
    assert expected <= set(lines[0])
    assert lines[0]["convergence_epoch"] is None  # NaN until known -> null in JSON
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 3 and cfg["hard_batch"]["delta"] == 0.5 and cfg["data"]["name"] == "digits"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["backprops"] == lines[-1]["backprops"]
    assert summary["strategy"] == "delta=0.5"
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
    assert len(printed) == 4 and printed[-1]["status"] == "finished"  # 3 reports + summary
    # tqdm's progress bar on stderr, its last state: every planned step done, the last report's loss and top-1
    bar = [s.strip() for s in re.split(r"[\r\n]", stderr) if s.strip().startswith("train:")][-1]
    steps = summary["backprops"]
    assert bar.startswith("train: 100%|") and f"| {steps}/{steps} [" in bar, bar
    assert bar.endswith(f", loss={lines[-1]['train_loss']:.3f}, top1={lines[-1]['test_top1']:.1f}]"), bar


def test_yaml_then_set_precedence(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("base:\n  epochs: 2\n  optim: {lr: 0.07, batch_size: 128}\nspace: {}\n")
    out = tmp_path / "run"
    code = main(["train", str(space), "--set", "optim.batch_size=256", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 2 and cfg["optim"]["lr"] == 0.07 and cfg["optim"]["batch_size"] == 256


@pytest.mark.e2e  # a fresh interpreter that imports torch and trains
def test_training_path_imports_neither_ray_nor_mlflow(tmp_path):
    code = ("import sys; from tune_hardbatch.cli import main; "
            "rc = main(['train', '--quiet', '--set', 'epochs=1', '--set', 'data.train_limit=300', '--out', "
            f"{str(tmp_path)!r}]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'mlflow')]; "
            "print('LEAKED', bad) if bad else None; sys.exit(rc or (3 if bad else 0))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


BAD_INPUTS = [
    (["--set", "no_such_key=1"], "no_such_key"),
    (["--set", "optim.nope=1"], "optim.nope"),
    (["--set", "hard_batch.delta=0"], "hard_batch.delta"),
    (["--set", "hard_batch.delta=1.5"], "hard_batch.delta"),
    (["--set", "trim.p_end=0"], "trim.p_end"),
    (["--set", "trim.p_start=1.2"], "trim.p_start"),
    (["--set", "trim.schedule=linear", "--set", "trim.p_start=0.3", "--set", "trim.p_end=0.6"], "trim.p_end"),
    (["--set", "trim.schedule=sawtooth"], "trim.schedule"),
    (["--set", "stepwise.fractions=[0.6, 0.4, 1.0]"], "stepwise.fractions"),
    (["--set", "stepwise.fractions=[0.2, 0.5]"], "stepwise.fractions"),
    (["--set", "stepwise.fractions=A-Q-O"], "stepwise.fractions"),
    (["--set", "stepwise.fractions=A-C-O", "--set", "stepwise.epochs=[1, 2]"], "stepwise.epochs"),
    (["--set", "stepwise.epochs=[1]"], "stepwise.epochs"),
    (["--set", "model.name=resnet9000"], "model.name"),
    (["--set", "model.name=mobilenetv3_small_050", "--set", "model.cifar_stem=true"], "model.cifar_stem"),
    (["--set", "data.name=imagenet"], "data.name"),
    (["--set", "data.name=imagefolder", "--set", "data.root=/nonexistent/dir"], "data.root"),
    (["--set", "data.name=cifar10", "--set", "data.root=/nonexistent/dir"], "data.root"),
    (["--set", "data.name=imagefolder"], "data.root"),
    (["--set", "epochs=three"], "epochs"),
    (["--set", "epochs=0"], "epochs"),
    (["--set", "optim.lr=-1"], "optim.lr"),
    (["--set", "optim.batch_size=4096"], "optim.batch_size"),
    (["--set", "optim.name=lion"], "optim.name"),
    (["--set", "device=cuda"], "device"),
    (["--set", "device=tpu"], "device"),
    (["--set", "seed=1.5"], "seed"),
    (["--set", "optim.nesterov=maybe"], "optim.nesterov"),
    (["--set", "target_top1=150"], "target_top1"),
    (["--set", "noequals"], "--set"),
    (["--set", "optim=3"], "optim"),
    (["--bogus-flag"], "usage"),
]


@pytest.mark.parametrize("args,key", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_exit_2(args, key, capsys, tmp_path):
    out = tmp_path / "never"
    rc = main(["train", "--quiet", "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and key in err[0], err
    assert "Traceback" not in "".join(err)
    assert not (out / "metrics.jsonl").exists()  # nothing started


@pytest.mark.parametrize("content,key", [("epochs: [1, 2\n", "malformed YAML"), ("- 1\n- 2\n", "mapping"),
                                         ("optim:\n  lr: 'fast'\n", "optim.lr"), ("dat:\n  name: x\n", "dat")])
def test_bad_yaml_files(content, key, capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    assert main(["train", "--quiet", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and key in err[0], err


def test_missing_config_file(capsys, tmp_path):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.e2e  # a fresh interpreter that imports torch
def test_bad_input_in_a_subprocess_has_no_traceback():
    proc = run_cli("train", "--set", "hard_batch.delta=1.5")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: hard_batch.delta")
    assert proc.stdout == ""


_QUICK_EXIT = """
import atexit, logging, sys
from tune_hardbatch.cli import run
log = logging.getLogger("late")
log.addHandler(logging.FileHandler(sys.argv[1], delay=True))
atexit.register(lambda: print("handler ran", flush=True))
log.warning("written before the exit")  # logging's own exit handler flushes and closes the file
sys.argv = ["tune-hardbatch", *sys.argv[2:]]
run()
print("never reached")
"""


@pytest.mark.parametrize("args, code", [(["search", "--set", "bogus=1"], 2), (["--help"], 0)])
def test_the_console_script_exits_with_mains_code_after_the_exit_handlers(tmp_path, args, code):
    """`cli.run` (the console script, `python -m tune_hardbatch`) ends the process at once after `main`, but
    only after every exit handler ran and the streams were flushed."""
    log = tmp_path / "late.log"
    proc = subprocess.run([sys.executable, "-c", _QUICK_EXIT, str(log), *args], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.rstrip().endswith("handler ran") and "never reached" not in proc.stdout
    assert log.read_text() == "written before the exit\n"
    assert "Traceback" not in proc.stderr
