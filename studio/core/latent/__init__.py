"""Latent-space editing in the core: walk export (:mod:`.media`) and the maths the kit owns.

The numpy direction maths lives in :mod:`studio.plugin_kit.latent` (plugins need it too, and
plugins import only the plugin API and the kit); it is re-exported here so core code reads
``from studio.core.latent import directions, vectors``.

* :mod:`.media`      GIF / MP4 / PNG-frames export of walks
* ``vectors``, ``fitting``, ``directions``, ``metrics``: see :mod:`studio.plugin_kit.latent`
"""

from studio.plugin_kit.latent import directions, fitting, metrics, vectors

__all__ = ["directions", "fitting", "metrics", "vectors"]
