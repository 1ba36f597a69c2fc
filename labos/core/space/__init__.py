"""Search spaces: the named parameters a campaign may vary.

A space maps parameter names to definitions. Five kinds exist:

* ``real``: a float in ``[low, high]``, optionally on a log scale, with a unit;
* ``integer``: an int in ``[low, high]``;
* ``discrete``: a number that takes only the listed values (ordered, spaced levels);
* ``categorical``: one of a list of choices;
* ``composition``: several components whose amounts are non-negative and sum to
  ``total`` (a simplex). Each component becomes a parameter of its own name.

Points are plain mappings ``{name: value}`` (never positional vectors). Every space
also has a bijection to the unit cube (:meth:`SearchSpace.from_unit`), which the
generic planners use: the composition simplex is mapped by stick-breaking so that a
uniform cube sample is a uniform simplex sample.
"""

from labos.core.space.constraints import LinearConstraint
from labos.core.space.parameters import (
    COMPOSITION_RTOL,
    NAME_RE,
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    Parameter,
    ParamValue,
    Point,
    RealParameter,
)
from labos.core.space.search import SearchSpace
from labos.core.space.unitcube import stick_break, stick_unbreak

__all__ = [
    "COMPOSITION_RTOL",
    "NAME_RE",
    "CategoricalParameter",
    "CompositionParameter",
    "DiscreteParameter",
    "IntegerParameter",
    "LinearConstraint",
    "ParamValue",
    "Parameter",
    "Point",
    "RealParameter",
    "SearchSpace",
    "stick_break",
    "stick_unbreak",
]
