"""The audit trail: every change made through the API or the operator CLI, refusals included.

``service.add_api_write`` records each API write in the write's own transaction (see
``vpsorg.transactions``); ``service.record_operator_change`` records CLI changes in the
command's own transaction; ``endpoints`` shows an account its events.
"""
