"""Kiln's Python package.

``kiln.Client`` is a client of Kiln's native API (``/api/v1``): datasets,
endpoints and rollouts, the prediction log, labels and performance,
monitors and alerts, pipelines, tuning studies, lineage, model cards,
gates and approvals, users, tokens, workspaces, grants and the audit
log. It works beside the ``mlflow`` client, which keeps doing tracking
and the model registry against the same server::

    import kiln
    client = kiln.Client()                 # $KILN_URL / $MLFLOW_TRACKING_URI
    client.datasets.add("sales", "data/sales.csv")
    scored = client.predict_frame("churn", df)
    client.send_labels("churn", scored.assign(label=truth))

``kiln.worker`` serves an MLflow pyfunc model to Kiln's Go runtime
(``python -m kiln.worker --model-dir DIR``). Importing ``kiln`` needs
nothing beyond the standard library; pandas and mlflow are imported by
the helpers that use them.
"""

__version__ = "0.2.0"

from .access import Principal  # noqa: E402
from .client import Client  # noqa: E402
from .errors import (  # noqa: E402
    AlreadyExists,
    DeadlineExceeded,
    DigestMismatch,
    FieldDetail,
    InternalError,
    InvalidArgument,
    InvalidState,
    KilnConnectionError,
    KilnError,
    NotFound,
    PermissionDenied,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unimplemented,
)
from ._resource import Page  # noqa: E402

__all__ = [
    "__version__",
    "Client",
    "Principal",
    "Page",
    "KilnError",
    "KilnConnectionError",
    "NotFound",
    "AlreadyExists",
    "InvalidArgument",
    "DigestMismatch",
    "InvalidState",
    "TooLarge",
    "Unimplemented",
    "PermissionDenied",
    "Unauthenticated",
    "DeadlineExceeded",
    "RateLimited",
    "InternalError",
    "FieldDetail",
]
