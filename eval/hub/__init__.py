"""Submitting checkpoints for scoring: a queue on the Hub, a scorer, results on the Hub, a static leaderboard.

``submit`` writes a request (``requests``) into a queue dataset; ``scorer`` evaluates
pending requests with ``entity_unlearn.eval.evaluate`` and uploads the results to a
results dataset (with the Hub's eval-results entries, ``eval_results``); ``site``
builds the leaderboard from a results dataset or local eval folders. Importing this
package imports neither torch nor huggingface_hub.
"""

from .repos import HubError, Queue, ResultsRepo
from .requests import FORMAT, Lease, Policy, Request, RequestError, parse_request
from .scorer import Outcome, ScorerConfig, next_request, score_queue
from .site import SiteConfig, SiteError, build_site, collect_runs
from .submit import SubmitConfig, submit

__all__ = [
    "HubError",
    "Queue",
    "ResultsRepo",
    "FORMAT",
    "Lease",
    "Policy",
    "Request",
    "RequestError",
    "parse_request",
    "Outcome",
    "ScorerConfig",
    "next_request",
    "score_queue",
    "SiteConfig",
    "SiteError",
    "build_site",
    "collect_runs",
    "SubmitConfig",
    "submit",
]
