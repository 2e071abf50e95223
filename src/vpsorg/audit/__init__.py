"""The audit trail: every change made through the API or the operator CLI, refusals included.

``middleware`` records API write requests after their response; ``service.record_operator_change``
records CLI changes in the command's own transaction; ``endpoints`` shows an account its events.
"""
