"""rnnkit draws its PNGs without touching the caller's matplotlib: backend, pyplot and its figures stay theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import REPO

SCRIPT = textwrap.dedent("""
    import sys
    import matplotlib
    assert matplotlib.get_backend() == "pdf"  # the user's choice (MPLBACKEND)
    import rnnkit
    from pathlib import Path
    data = Path(sys.argv[1])
    lines = (data / "sms-spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[:300]
    pairs = [(t, l) for l, t in (ln.split("\\t", 1) for ln in lines)]
    small = {"model.hidden": 8, "model.embedding": 8, "train.tensorboard": False, "train.log_every": 2}
    run = rnnkit.train("text-classify", data=pairs, out="spam", overrides=small, max_steps=6, progress=False)
    run.report("valid")                                            # confusion matrix
    run.diagnose(plot="diagnosis.png")                             # learning-curve diagnosis
    air = rnnkit.train("airline", data_dir=data, out="air", max_steps=4, progress=False,
                       overrides={"model.hidden": 8, "train.tensorboard": False})
    air.forecast_report(horizon=6, plot="forecast.png")            # forecast plot
    rnnkit.api.gradient_flow(("lstm",), steps=10, hidden=4, plot="flow.png")
    assert matplotlib.get_backend() == "pdf", matplotlib.get_backend()
    assert "matplotlib.pyplot" not in sys.modules                  # nothing went through pyplot
    for png in ("spam/curves.png", "spam/confusion_valid.png", "diagnosis.png", "air/curves.png", "forecast.png",
                "flow.png"):
        assert Path(png).read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", png
    # code that only draws through pyplot (Optuna's plots in `tune report`) runs inside pyplot_figures()
    import matplotlib.pyplot as plt
    from rnnkit.figures import pyplot_figures
    mine = plt.figure()
    with pyplot_figures():
        plt.plot([1, 2, 3])
    assert plt.get_fignums() == [mine.number] and matplotlib.get_backend() == "pdf"
    print("backend unchanged")
""")


def test_training_and_plots_leave_the_backend_alone(tmp_path, data_dir):
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / "src"),
        MPLBACKEND="pdf",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backend unchanged" in proc.stdout
