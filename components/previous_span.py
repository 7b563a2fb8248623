"""PreviousSpanStrategy: the baseline of drift is the newest artifact of an earlier span.

TFX's LatestArtifactStrategy would take the newest statistics of any run, which after a run
that stopped on drift (and a retry of the same span, whose statistics TFX's cache reuses) is
this span's own: drift would pass on the second try. Here the resolver also takes this run's
examples, and returns the newest statistics whose span is below theirs.
"""
from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver

from components.checkpoint_inputs import span_of

# The resolver's input keys: this run's examples, and the candidate statistics.
EXAMPLES_KEY, STATISTICS_KEY = "examples", "statistics"


class PreviousSpanStrategy(resolver.ResolverStrategy):
    """{examples: as given, statistics: [the newest of the highest span below the examples']};
    no statistics on the first span (the DistributionValidator then has nothing to compare)."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        examples = input_dict.get(EXAMPLES_KEY, [])
        current = max((span_of(artifact) for artifact in examples), default=None)
        earlier = [artifact for artifact in input_dict.get(STATISTICS_KEY, [])
                   if current is not None and artifact.span < current]
        return {EXAMPLES_KEY: examples,
                STATISTICS_KEY: sorted(earlier, key=lambda artifact: (artifact.span, artifact.id)
                                       )[-1:]}
