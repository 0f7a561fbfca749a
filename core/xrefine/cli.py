"""The ``xrefine`` command: a thin shell over the Python API.

    xrefine refine EXPT REFL [key=value ...] [--config FILE]
    xrefine predict EXPT [d_min=...] [force_static=true] [output=predicted.refl]
    xrefine simulate PRESET -o DIR [seed=N] [noise=N]
    xrefine bench SCENARIO --engines lm,scipy-trf --json FILE [seed=N] [key=value ...]
    xrefine plugins
    xrefine show-config

A user error prints one line and exits with status 2; outputs are written atomically and never
over an input file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import InputError
from .hookspecs import hookimpl

USAGE = __doc__


def _split(argv: Sequence[str], flags_with_value=("--config", "-o", "--engines", "--json")):
    positional, kv, flags = [], [], {}
    it = iter(argv)
    for a in it:
        if a in flags_with_value:
            try:
                flags[a] = next(it)
            except StopIteration:
                raise InputError(f"{a} needs a value") from None
        elif a.startswith("-"):
            raise InputError(f"unknown flag {a}; see `xrefine --help`")
        elif "=" in a and not os.path.exists(a):
            kv.append(a)
        else:
            positional.append(a)
    return positional, kv, flags


def _check_outputs(inputs: Sequence[str], outputs: Sequence[str]) -> None:
    ins = {Path(p).resolve() for p in inputs}
    for o in outputs:
        if Path(o).resolve() in ins:
            raise InputError(f"output {o} would overwrite an input file; choose another output name")


class _Progress:
    """Live table of engine steps (rich), subscribed through the step hook."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)

    @hookimpl
    def xrefine_step_done(self, record):
        import math

        r = record.rmsd
        self.console.print(
            f"step {record.step:3d} (cycle {record.macrocycle})  nref {record.n_reflections:7d}  "
            f"RMSD X {r[0]:.5f} mm  Y {r[1]:.5f} mm  phi {math.degrees(r[2]):.5f} deg",
            highlight=False,
            soft_wrap=True,
        )


def cmd_refine(argv) -> int:
    from .config import build_config
    from .io import atomic_write, write_experiments, write_reflections
    from .plugins import get_plugin_manager
    from .refine import refine
    from .report import summary_json, summary_text

    positional, kv, flags = _split(argv)
    expts = [p for p in positional if p.endswith((".expt", ".json"))]
    refls = [p for p in positional if p.endswith((".refl", ".pickle"))]
    other = [p for p in positional if p not in expts and p not in refls]
    if other:
        raise InputError(f"{other[0]}: not an experiment list (.expt) or reflection file (.refl), and no file by that name")
    if len(expts) != 1 or len(refls) != 1:
        raise InputError("xrefine refine needs one .expt and one .refl file: xrefine refine EXPT REFL [key=value ...]")
    config = build_config(flags.get("--config"), kv)
    outputs = [config[k] for k in ("output.experiments", "output.reflections", "output.log", "output.json")]
    _check_outputs(expts + refls, outputs)
    import time

    t0 = time.perf_counter()

    progress = _Progress()
    pm = get_plugin_manager()
    pm.register(progress, name="xrefine-progress")
    try:
        result = refine(expts[0], refls[0], config=config)
    finally:
        pm.unregister(name="xrefine-progress")
    history = result.experiments.extra.get("history")
    if isinstance(history, list):
        import datetime

        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        from . import __version__

        result.experiments.extra["history"] = history + [f"{stamp}|xrefine.refine|v{__version__}"]
    write_experiments(result.experiments, config["output.experiments"])
    write_reflections(result.reflections, config["output.reflections"])
    result.timings["read_to_write"] = time.perf_counter() - t0
    text = summary_text(result)
    atomic_write(config["output.log"], (text + "\n").encode())
    atomic_write(config["output.json"], summary_json(result).encode())
    print(text)
    return 0


def cmd_predict(argv) -> int:
    from .config import Option
    from .io import read_experiments, write_reflections
    from .models import clear_scan_points
    from .refine import build_predictors
    from .predict import predict_experiments

    positional, kv, _ = _split(argv)
    if len(positional) != 1:
        raise InputError("xrefine predict needs one .expt file: xrefine predict EXPT [d_min=...] [output=predicted.refl]")
    opts = {"d_min": Option("d_min", None, "float", "resolution limit", allow_none=True),
            "force_static": Option("force_static", False, "bool", "ignore models at scan points"),
            "output": Option("output", "predicted.refl", "str", "output file")}
    values = {k: o.default for k, o in opts.items()}
    for a in kv:
        k, v = a.split("=", 1)
        if k not in opts:
            raise InputError(f"unknown option {k!r} for predict; use d_min=, force_static= or output=")
        values[k] = opts[k].parse(v, "command line")
    _check_outputs(positional, [values["output"]])
    experiments = read_experiments(positional[0])
    if values["force_static"]:  # as dials.predict force_static=True: the static models only
        for e in experiments:
            for model in (e.crystal, e.beam, e.goniometer):
                clear_scan_points(model)
    table = predict_experiments(experiments, build_predictors(experiments), values["d_min"])
    write_reflections(table, values["output"])
    print(f"{table.nrows} reflections predicted, written to {values['output']}")
    return 0


def cmd_simulate(argv) -> int:
    from .simulation import simulate

    positional, kv, flags = _split(argv)
    if len(positional) != 1 or "-o" not in flags:
        raise InputError("xrefine simulate needs a preset and an output folder: xrefine simulate PRESET -o DIR [seed=N] [noise=N]")
    values = {"seed": 0, "noise": 0}
    for a in kv:
        k, v = a.split("=", 1)
        if k not in values:
            raise InputError(f"unknown option {k!r} for simulate; only seed=N and noise=N")
        try:
            values[k] = int(v)
        except ValueError:
            raise InputError(f"{k}={v!r} is not an integer") from None
    info = simulate(positional[0], flags["-o"], values["seed"], values["noise"])
    print(info)
    return 0


def cmd_plugins(argv) -> int:
    from .plugins import plugin_info

    for name, dist, version, hooks in plugin_info():
        print(f"{name}  ({dist} {version})")
        for h in hooks:
            if h in ("xrefine_config_options",) or h.startswith("xrefine_refinement") or h == "xrefine_step_done":
                print(f"    {h}")
                continue
            print(f"    {h}: {', '.join(sorted(_registered_by(name, h)))}")
    return 0


def _registered_by(plugin: str, hook: str) -> list:
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    module = pm.get_plugin(plugin)
    fn = getattr(module, hook, None)
    return list((fn() or {}).keys()) if fn else []


def cmd_show_config(argv) -> int:
    from .config import all_options

    for key, opt in sorted(all_options().items()):
        choices = f" [{'|'.join(opt.choices)}]" if opt.choices else ""
        default = "Auto" if opt.default is None else opt.default
        if isinstance(default, list):
            default = ",".join(default) if default else "(none)"
        print(f"{key} = {default}{choices}    ({opt.type}, {opt.source})\n    {opt.help}")
    return 0


def cmd_bench(argv) -> int:
    from .bench import bench

    positional, kv, flags = _split(argv)
    if len(positional) != 1:
        raise InputError("xrefine bench needs one scenario: xrefine bench SCENARIO --engines lm,scipy-trf --json FILE")
    engines = [e for e in flags.get("--engines", "lm").split(",") if e]
    rows = bench(positional[0], engines, flags.get("--json"), kv)
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    return 0


COMMANDS = {
    "refine": cmd_refine,
    "predict": cmd_predict,
    "simulate": cmd_simulate,
    "plugins": cmd_plugins,
    "show-config": cmd_show_config,
    "bench": cmd_bench,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        import difflib

        close = difflib.get_close_matches(argv[0], list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(f"xrefine: unknown command {argv[0]!r}{hint} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    try:
        return cmd(argv[1:])
    except InputError as exc:
        print(f"xrefine: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
