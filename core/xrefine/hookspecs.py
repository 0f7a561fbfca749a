"""Hook specifications: the plugin author's manual.

A plugin is any module registered under the ``xrefine`` entry-point group (the built-in plugins
are registered the same way, in pyproject.toml).  It implements some of the functions below,
decorated with ``xrefine.hookspecs.hookimpl``; no base class is needed.  Registration hooks
return a dict ``name -> object``; xrefine collects them from every plugin and refuses two
plugins registering the same name.  Event hooks return nothing; pluggy calls them in reverse
registration order (the plugin registered last is called first).

Order of a refinement run: ``xrefine_config_options`` (once, when the configuration is built)
-> ``xrefine_parameterisations`` / ``xrefine_predictors`` / ``xrefine_engines`` /
``xrefine_outlier_detectors`` / ``xrefine_restraints`` / ``xrefine_constraints`` (when the
problem is assembled; the restraint and constraint builders again for the scan-varying
macrocycle, after ``xrefine_smoothers`` has wrapped the models that vary) ->
``xrefine_refinement_started`` (once per independent set of experiments) ->
``xrefine_step_done`` after every engine step -> ``xrefine_refinement_finished`` (once).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("xrefine")
hookimpl = pluggy.HookimplMarker("xrefine")


@hookspec
def xrefine_config_options():
    """Options this plugin adds to the configuration.

    Return a list of ``xrefine.config.Option``.  Keys are dotted (``detector.hierarchy_level``)
    and must be unique across plugins; the user sets them as ``key=value`` on the command line,
    in a TOML file, or as keyword arguments of ``xrefine.refine`` (dots become double
    underscores there: ``detector__hierarchy_level=1``).  ``xrefine show-config`` lists them with
    their defaults and help.
    """


@hookspec
def xrefine_parameterisations():
    """Parameterisation builders, one per *slot*.

    Return ``{slot: build}`` where slot is one of ``detector``, ``beam``, ``crystal.orientation``,
    ``crystal.unit_cell``, ``goniometer`` and ``build(experiments, config)`` returns a list of
    ``xrefine.parameters.Parameterisation``, one per distinct model object of that kind that
    should be refined (a model shared by several experiments is parameterised once, listing all
    their indices in ``experiment_ids``).  Return an empty list to leave the slot unrefined.
    The global parameter vector concatenates the slots in the order above.
    """


@hookspec
def xrefine_predictors():
    """Predictors: return ``{name: predictor}`` with ``xrefine.predictor.Predictor`` instances.

    For every experiment the first predictor whose ``applies_to(experiment)`` is true is used.
    """


@hookspec
def xrefine_outlier_detectors():
    """Centroid-outlier detectors: return ``{name: factory}``.

    ``factory(config, converged=False)`` returns an ``xrefine.outliers.OutlierDetector``; the
    user chooses one with ``outlier.algorithm=name``.  The core splits reflections into jobs (per
    experiment and phi block) and calls ``detect`` once per job.  With ``converged=True`` the
    detector is for residuals of a converged model: it should then flag only what is
    inconsistent with the noise (a stricter cut-off), because trimming the tails of good data
    biases the answer wherever the model is not perfect.
    """


@hookspec
def xrefine_smoothers():
    """Scan-varying wrappers: return ``{name: factory}``.

    ``factory(static, experiment, config, frames)`` turns a static ``Parameterisation`` (of a
    model used by the rotation scan `experiment`) into an
    ``xrefine.parameters.ScanVaryingParameterisation`` with the same kind, whose free
    parameters are values at sample points along that scan.  `frames` are the composition
    frames of the reflections that will be refined (so the smoother can make sure every sample
    has data).  It must use only the static parameterisation's public interface
    (``parameters``/``free_parameters``, ``get_free_values``, ``set_free_values``, ``state``,
    ``state_derivatives``, ``panel_columns``), so any parameterisation can be smoothed without
    knowing it.  The user chooses one with ``smoother=name`` (default ``gaussian``).
    """


@hookspec
def xrefine_engines():
    """Minimisation engines: return ``{name: engine_class}``.

    ``engine_class(config)`` must give an ``xrefine.engine.Engine``; the user chooses one with
    ``engine=name``.
    """


@hookspec
def xrefine_restraints():
    """Restraint builders: return ``{name: build}``.

    ``build(parameterisations, experiments, config)`` returns a list of
    ``xrefine.restraints.Restraint`` acting on those parameterisations (it is called again
    whenever the problem is rebuilt, e.g. for the scan-varying macrocycle; return nothing for
    parameterisations a restraint does not apply to).  Restraint rows join the least-squares
    system as extra equations.
    """


@hookspec
def xrefine_constraints():
    """Equal-shift constraint builders: return ``{name: build}``.

    ``build(parameterisations, experiments, config)`` returns a list of groups, each a list of
    ``(parameterisation, Parameter)`` pairs that must move by one common shift (their initial
    differences are kept).  Engines then see one parameter per group.
    """


@hookspec
def xrefine_simulation_presets():
    """Simulation presets for ``xrefine simulate``: return ``{name: preset}``.

    ``preset.build(seed)`` returns ``xrefine.simulation.Truth`` (the true experiment list and the
    resolution limit and noise to use); ``preset.description`` is one line for the listing.
    """


@hookspec
def xrefine_refinement_started(problem, config):
    """Called once the problem is assembled, before the first engine step."""


@hookspec
def xrefine_step_done(record):
    """Called after every engine step with an ``xrefine.engine.StepRecord``."""


@hookspec
def xrefine_refinement_finished(result):
    """Called with the ``xrefine.refine.RefinementResult`` when refinement ends."""
