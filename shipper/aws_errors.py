"""Whether a failed AWS call may pass if made again: one rule for the AWS sinks and for secrets.

Imported only where boto3 is in use; botocore itself, and http.client behind the Retry-After reader, are
imported when an error is classified: the Lambda handler imports this module and seldom needs them.
"""

from __future__ import annotations

#: Error codes, for a whole call or one record, that mean "not now" rather than "never".
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "LimitExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceError",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def classify(exc: Exception) -> tuple[bool, str, float | None]:
    """(retryable, reason, retry_after) for an error raised by a botocore call.

    Throttling, 5xx, refused or reset connections and timeouts may pass later; access denied, a missing
    resource, bad parameters or missing credentials will not.
    """
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    from shipper.httpio import retry_after_seconds

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode", 0)
        code = error.get("Code") or str(status)
        retryable = code in RETRYABLE_CODES or status >= 500 or status == 429
        retry_after = retry_after_seconds(metadata.get("HTTPHeaders", {}).get("retry-after"))
        return (
            retryable,
            f"{code}: {error.get('Message', '')}",
            retry_after,
        )
    return isinstance(exc, HTTPClientError | BotocoreConnectionError), f"{type(exc).__name__}: {exc}", None
