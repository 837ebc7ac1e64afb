"""``kiln.Client``: one object for Kiln's native API (``/api/v1``), beside
the ``mlflow`` client (which keeps doing tracking and the registry)."""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional, Union

from . import __version__
from ._transport import DEFAULT_BACKOFF, DEFAULT_BACKOFF_MAX, DEFAULT_RETRIES, Transport, default_credentials, default_url
from .access import Audit, Grants, Principal, Tokens, Users, Workspaces
from .datasets import Datasets
from .endpoints import Endpoints
from .feedback import Feedback, Performance
from .frames import predict_frame
from .governance import Approvals, Gates, ModelCards
from .lineage import Lineage
from .monitors import AlertReceivers, Alerts, Monitors
from .pipelines import Pipelines
from .predictions import Predictions
from .scoring import ScoreJobs
from .tuning import Studies

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TimeArg = Union[datetime, timedelta, int, float, str, None]


class Client:
    """A client of one Kiln server.

    Args:
        url: the server (default ``$KILN_URL``, else an http(s)
            ``$MLFLOW_TRACKING_URI``, else http://127.0.0.1:5000).
        token: an API token, sent as ``Authorization: Bearer`` (default
            ``$KILN_TOKEN``, else ``$MLFLOW_TRACKING_TOKEN``).
        username, password: HTTP Basic credentials (default
            ``$MLFLOW_TRACKING_USERNAME`` and ``$MLFLOW_TRACKING_PASSWORD``;
            a token wins when both are given).
        workspace: the workspace requests act in (``X-Kiln-Workspace``;
            default ``$KILN_WORKSPACE``, else the server's default).
        actor: recorded as who made changes while access control is off
            (``X-Kiln-Actor``); with access control on the signed-in user is.
        timeout: seconds a request may take.
        ssl_context: for https servers with a private CA.
        retries: how many times a failed request is sent again (0: never).
            A 429 or 503 is retried whatever the method; a failed
            connection, a 502 or a 504 only for GET, HEAD, PUT, DELETE and
            OPTIONS; a body that is a stream which cannot be rewound never.
        backoff, backoff_max: the wait before the n-th retry is
            backoff·2^(n-1) seconds, at most backoff_max, jittered to
            50–100%; a ``Retry-After`` of a 429 or 503 (seconds or an HTTP
            date) is waited instead (one over a minute is not: the error
            is raised).

    The API is grouped: ``datasets``, ``endpoints``, ``predictions``,
    ``feedback``, ``monitors``, ``alerts``, ``alert_receivers``,
    ``pipelines``, ``studies``, ``lineage``, ``model_cards``, ``gates``,
    ``approvals``, ``score_jobs``, and access management: ``users``,
    ``tokens``, ``workspaces``, ``grants``, ``audit``; pandas helpers
    are methods of the client (:meth:`predict_frame`,
    :meth:`send_labels`, :meth:`predictions_frame`).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        workspace: Optional[str] = None,
        *,
        actor: Optional[str] = None,
        timeout: float = 60.0,
        ssl_context: Optional[ssl.SSLContext] = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        import os

        env_token, env_user, env_pw = default_credentials()
        if token is None and username is None:
            token, username, password = env_token, env_user, env_pw
        self._t = Transport(
            url or default_url(),
            token=token or "",
            username=username or "",
            password=password or "",
            workspace=workspace if workspace is not None else os.environ.get("KILN_WORKSPACE", ""),
            actor=actor or "",
            timeout=timeout,
            user_agent=f"kiln-python/{__version__}",
            ssl_context=ssl_context,
            retries=retries,
            backoff=backoff,
            backoff_max=backoff_max,
        )
        self.datasets = Datasets(self._t)
        self.endpoints = Endpoints(self._t)
        self.predictions = Predictions(self._t)
        self.feedback = Feedback(self._t)
        self.monitors = Monitors(self._t)
        self.alerts = Alerts(self._t)
        self.alert_receivers = AlertReceivers(self._t)
        self.pipelines = Pipelines(self._t)
        self.studies = Studies(self._t)
        self.lineage = Lineage(self._t)
        self.model_cards = ModelCards(self._t)
        self.gates = Gates(self._t)
        self.approvals = Approvals(self._t)
        self.score_jobs = ScoreJobs(self._t)
        self.users = Users(self._t)
        self.tokens = Tokens(self._t)
        self.workspaces = Workspaces(self._t)
        self.grants = Grants(self._t)
        self.audit = Audit(self._t)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._t.url

    @property
    def workspace(self) -> str:
        return self._t.workspace

    def __repr__(self) -> str:
        ws = f", workspace={self._t.workspace!r}" if self._t.workspace else ""
        return f"kiln.Client({self._t.url!r}{ws})"

    def with_workspace(self, workspace: str) -> "Client":
        """A client of the same server and credentials acting in another workspace."""
        t = self._t
        return Client(t.url, token=t.token or None, username=t.username or None, password=t.password or None,
                      workspace=workspace, actor=t.actor or None, timeout=t.timeout, ssl_context=t.ssl_context,
                      retries=t.retries, backoff=t.backoff, backoff_max=t.backoff_max)

    def health(self) -> bool:
        """Whether the server answers /health."""
        return self._t.request("GET", "/health", headers={"Accept": "text/plain"}).status == 200

    def whoami(self) -> Principal:
        """Who the server takes these credentials for, and their grants."""
        return Principal.from_json(self._t.api("GET", "/whoami"))

    def openapi(self) -> str:
        """The server's OpenAPI document (YAML)."""
        return self._t.request("GET", "/api/v1/openapi.yaml", headers={"Accept": "application/yaml"}).text()

    def mlflow_client(self) -> Any:
        """An ``mlflow.MlflowClient`` of the same server (tracking and registry
        stay MLflow's; its credentials come from MLflow's variables)."""
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self._t.url, registry_uri=self._t.url)

    # -- pandas -----------------------------------------------------------

    def predict_frame(self, endpoint: str, df: "pd.DataFrame", *, batch_size: int = 1000,
                      request_id_prefix: Optional[str] = None) -> "pd.DataFrame":
        """Scores df through a deployed endpoint (MLflow scoring) in batches;
        returns, per input row, ``request_id``, ``row`` and the predictions:
        keep them to send labels later (:meth:`send_labels`)."""
        return predict_frame(self._t, endpoint, df, batch_size=batch_size, request_id_prefix=request_id_prefix)

    def send_labels(self, endpoint: str, df: "pd.DataFrame", *, request_id_col: str = "request_id",
                    label_col: str = "label", row_col: Optional[str] = "row", batch_size: int = 100_000) -> int:
        """Sends the ground truth of a DataFrame as labels (one per row, keyed
        by request id and row); returns how many were stored."""
        return self.feedback.send_frame(endpoint, df, request_id_col=request_id_col, label_col=label_col,
                                        row_col=row_col, batch_size=batch_size)

    def predictions_frame(self, endpoint: str, *, start: TimeArg = None, end: TimeArg = None, flush: bool = True,
                          successful_only: bool = False) -> "pd.DataFrame":
        """The endpoint's prediction log over [start, end) as a DataFrame."""
        return self.predictions.frame(endpoint, start=start, end=end, flush=flush, successful_only=successful_only)

    def performance(self, endpoint: str, **kw: Any) -> Performance:
        """Quality of the labelled predictions (see Feedback.performance)."""
        return self.feedback.performance(endpoint, **kw)
